// Method names → factories. A new method adds one line here and its own file.
#include <ATen/ATen.h>

#include "common/error.h"
#include "methods/method.h"

namespace tssl::methods {

namespace {
struct Entry {
  const char* name;
  std::unique_ptr<Method> (*make)(OptionReader&);
};
constexpr Entry kMethods[] = {
    {"vicreg", makeVICReg},
    {"simclr", makeSimCLR},
    {"tcr", makeTCR},
    {"barlow", makeBarlow},
};
}  // namespace

double OptionReader::take(const char* key) {
  auto it = options_.find(key);
  TSSL_CHECK(it != options_.end(), "ERR_CONFIG", "method ", method_, ": option ", key, " is missing (the config supplies every option)");
  const double v = it->second;
  options_.erase(it);
  return v;
}

void OptionReader::finish() const {
  if (options_.empty()) return;
  std::string keys;
  for (const auto& kv : options_) keys += (keys.empty() ? "" : ", ") + kv.first;
  throw Error("ERR_CONFIG", "method " + method_ + " has no option " + keys);
}

std::unique_ptr<Method> makeMethod(const std::string& name, const Options& options) {
  for (const Entry& e : kMethods) {
    if (name != e.name) continue;
    OptionReader reader(name, options);
    auto m = e.make(reader);
    reader.finish();
    return m;
  }
  std::string known;
  for (const Entry& e : kMethods) known += (known.empty() ? "" : ", ") + std::string(e.name);
  throw Error("ERR_CONFIG", "unknown method " + name + " (known: " + known + ")");
}

at::Tensor stackViews(const std::vector<at::Tensor>& zs) {
  TSSL_CHECK(!zs.empty(), "ERR_TORCH_SHAPE", "no views to compute a loss on");
  if (zs.size() == 1 && zs[0].dim() == 3) return zs[0];
  return at::stack(zs, 0);
}

}  // namespace tssl::methods
