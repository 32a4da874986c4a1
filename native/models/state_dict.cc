#include "models/state_dict.h"

#include <ATen/core/grad_mode.h>

#include <map>
#include <set>

#include "common/error.h"

namespace tssl {

StateDictMatch loadStateDict(torch::nn::Module& module, const std::vector<std::pair<std::string, at::Tensor>>& entries, KeyPolicy policy,
                             const std::string& context) {
  std::map<std::string, at::Tensor> targets;
  for (const auto& kv : module.named_parameters(true)) targets.emplace(kv.key(), kv.value());
  for (const auto& kv : module.named_buffers(true)) targets.emplace(kv.key(), kv.value());
  StateDictMatch match;
  std::vector<std::string> mismatched;
  std::set<std::string> seen;
  for (const auto& [name, src] : entries) {
    auto it = targets.find(name);
    if (it == targets.end()) {
      match.unexpected.push_back(name);
      continue;
    }
    seen.insert(name);
    if (src.sizes() != it->second.sizes())
      mismatched.push_back(concat(name, ": checkpoint ", shapeString(src.sizes().vec()), " vs model ", shapeString(it->second.sizes().vec())));
  }
  for (const auto& kv : targets)
    if (!seen.count(kv.first)) match.missing.push_back(kv.first);
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 20; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 20) s += concat(", … (", v.size() - 20, " more)");
    return s;
  };
  const bool missingIsError = policy == KeyPolicy::Strict && !match.missing.empty();
  const bool unexpectedIsError = policy != KeyPolicy::AllowMissingAndUnexpected && !match.unexpected.empty();
  if (!mismatched.empty() || missingIsError || unexpectedIsError) {
    std::string msg = context + "state_dict does not match the model:";
    if (missingIsError) msg += concat(" missing keys (", match.missing.size(), "): ", list(match.missing), ";");
    if (unexpectedIsError) msg += concat(" unexpected keys (", match.unexpected.size(), "): ", list(match.unexpected), ";");
    if (!mismatched.empty()) msg += concat(" shape mismatches (", mismatched.size(), "): ", list(mismatched), ";");
    throw Error("ERR_CHECKPOINT_KEYS", msg);
  }
  at::NoGradGuard noGrad;
  for (const auto& [name, src] : entries) {
    auto it = targets.find(name);
    if (it != targets.end()) it->second.copy_(src);
  }
  return match;
}

}  // namespace tssl
