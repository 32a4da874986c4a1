// Method names → factories (a new method adds one line here and its own file), and the lifecycle's defaults.
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <cmath>

#include "common/error.h"
#include "distributed/autograd.h"
#include "methods/method.h"
#include "models/batch_norm.h"

namespace tssl::methods {

namespace {
struct Entry {
  const char* name;
  std::unique_ptr<Method> (*make)(OptionReader&);
};
constexpr Entry kMethods[] = {
    {"vicreg", makeVICReg}, {"simclr", makeSimCLR},   {"tcr", makeTCR},   {"barlow", makeBarlow}, {"byol", makeBYOL},
    {"mocov3", makeMoCoV3}, {"simsiam", makeSimSiam}, {"dino", makeDINO}, {"swav", makeSwAV},     {"nnclr", makeNNCLR},
};
}  // namespace

double OptionReader::take(const char* key) {
  auto it = options_.find(key);
  TSSL_CHECK(it != options_.end(), "ERR_CONFIG", "method ", method_, ": option ", key, " is missing (the config supplies every option)");
  const double v = it->second;
  options_.erase(it);
  return v;
}

int64_t OptionReader::takeInt(const char* key, int64_t min) {
  const double v = take(key);
  TSSL_CHECK(v == std::floor(v) && v >= double(min), "ERR_CONFIG", "method ", method_, ": ", key, " must be an integer >= ", min, ", got ", v);
  return int64_t(v);
}

bool OptionReader::takeBool(const char* key) {
  const double v = take(key);
  TSSL_CHECK(v == 0 || v == 1, "ERR_CONFIG", "method ", method_, ": ", key, " must be true or false, got ", v);
  return v == 1;
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

at::Tensor GroupCollective::gather(const at::Tensor& x) { return dist::gatherWithGrad(x, g_); }
at::Tensor GroupCollective::gatherNoGrad(const at::Tensor& x) {
  at::NoGradGuard ng;
  return g_.allGather(x.detach().contiguous());
}

std::vector<ParamGroup> Method::paramGroups(MethodModel& m) const {
  std::vector<ParamGroup> g{{"backbone", trainableParameters(*m.backbone)}};
  if (!m.projector.is_empty()) g.push_back({"projector", trainableParameters(*m.projector)});
  if (!m.predictor.is_empty()) g.push_back({"predictor", trainableParameters(*m.predictor)});
  return g;
}

Outputs Method::forward(MethodModel& m, const std::vector<at::Tensor>& views, bool concat) const {
  Outputs o;
  if (concat) {
    at::Tensor f = m.backbone->forward(at::cat(views, 0));
    o.feats.push_back(f);
    o.z = forwardSequential(m.projector, f).chunk(int64_t(views.size()), 0);
  } else {
    for (const auto& x : views) {
      at::Tensor f = m.backbone->forward(x);
      o.feats.push_back(f);
      o.z.push_back(forwardSequential(m.projector, f));
    }
  }
  if (!m.predictor.is_empty())
    for (const auto& z : o.z) o.p.push_back(forwardSequential(m.predictor, z));
  if (m.hasTeacher()) {
    // solo-learn's momentum_forward: no gradient, the teacher in train mode (its own BatchNorm statistics).
    at::NoGradGuard ng;
    for (const auto& x : views) o.teacher.push_back(forwardSequential(m.momentumProjector, m.momentumBackbone->forward(x)));
  }
  return o;
}

losses::LossResult lossOnProjections(const Method& m, const std::vector<at::Tensor>& zs) {
  TSSL_CHECK(m.projectionsOnly(), "ERR_INVALID_ARG", "method ", m.name(),
             ": its loss needs more than projections (predictions, a teacher, prototypes or a queue); train it with train()");
  Outputs o;
  o.z = zs;
  LocalCollective local;
  LossContext ctx{local};
  return m.loss(o, ctx);
}

at::Tensor l2normalize(const at::Tensor& x) { return x / x.norm(2, {1}, true).clamp_min(1e-12).expand_as(x); }

int64_t largeCrops(const std::vector<at::Tensor>& views) {
  int64_t n = 0;
  while (n < int64_t(views.size()) && views[size_t(n)].sizes() == views[0].sizes()) ++n;
  return n;
}

std::vector<at::Tensor> backboneByResolution(ResNet& backbone, const std::vector<at::Tensor>& views) {
  std::vector<at::Tensor> out;
  for (size_t start = 0; start < views.size();) {
    size_t end = start + 1;
    while (end < views.size() && views[end].sizes() == views[start].sizes()) ++end;
    std::vector<at::Tensor> group(views.begin() + int64_t(start), views.begin() + int64_t(end));
    at::Tensor f = backbone->forward(group.size() == 1 ? group[0] : at::cat(group, 0));
    for (auto& part : f.chunk(int64_t(group.size()), 0)) out.push_back(part);
    start = end;
  }
  return out;
}

at::Tensor stackViews(const std::vector<at::Tensor>& zs) {
  TSSL_CHECK(!zs.empty(), "ERR_TORCH_SHAPE", "no views to compute a loss on");
  if (zs.size() == 1 && zs[0].dim() == 3) return zs[0];
  return at::stack(zs, 0);
}

}  // namespace tssl::methods
