// Loading named tensors into a module, PyTorch's load_state_dict: one matcher for the bindings
// (Module.loadStateDict) and the trainer (resume). The TypeScript loader (lib/checkpoint/load.ts) reports in
// the same words.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

namespace tssl {

enum class KeyPolicy {
  Strict,                     // every module tensor given, nothing else (load_state_dict(strict=True))
  AllowMissing,               // module tensors may be absent; unknown names are errors (resume)
  AllowMissingAndUnexpected,  // both reported, neither an error (load_state_dict(strict=False))
};

struct StateDictMatch {
  std::vector<std::string> missing, unexpected;
};

/// Checks every name and shape first; any error (ERR_CHECKPOINT_KEYS, prefixed by `context`, listing all the
/// problems) changes nothing. Then copies the values in without recording gradients.
StateDictMatch loadStateDict(torch::nn::Module& module, const std::vector<std::pair<std::string, at::Tensor>>& entries, KeyPolicy policy,
                             const std::string& context);

}  // namespace tssl
