// A self-supervised method as the engine sees it: how the loss is computed from the projections of a batch's
// views, with which options. One file per method (vicreg.cc, simclr.cc, tcr.cc, barlow.cc), listed once in
// registry.cc; the trainer and the losses binding resolve a method once, before any step. Adding a method:
// docs/methods.md.
//
// Options arrive complete: their defaults live in the TypeScript schema (lib/methods/<name>.ts). A missing or
// unknown option is ERR_CONFIG naming it; nothing here falls back to a default.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "distributed/group.h"
#include "losses/losses.h"

namespace tssl::methods {

using Options = std::map<std::string, double>;

class Method {
 public:
  virtual ~Method() = default;
  virtual const char* name() const = 0;
  /// Views the loss takes: 2 for the pairwise methods (VICReg, Barlow Twins); 0 for any number ≥ 2.
  virtual int64_t views() const = 0;
  /// `zs`: one (N, D) projection per view, float32 (or the views stacked as one (V, N, D) tensor).
  virtual losses::LossResult loss(const std::vector<at::Tensor>& zs) const = 0;
  /// The same loss as one rank of a data-parallel job sees it, as solo-learn computes it across processes
  /// (local terms on the rank's batch, batch statistics over the global batch through dist/autograd.h).
  /// `(1/W) Σ_ranks` of its gradients equals the single-process gradient on the concatenated batch.
  virtual losses::LossResult loss(const std::vector<at::Tensor>& zs, dist::Group& group) const = 0;
};

/// Reads a method's options: each `take` removes a key (ERR_CONFIG when missing); `finish` refuses leftovers.
class OptionReader {
 public:
  OptionReader(std::string method, Options options) : method_(std::move(method)), options_(std::move(options)) {}
  double take(const char* key);
  void finish() const;

 private:
  std::string method_;
  Options options_;
};

/// The method called `name` with its options; ERR_CONFIG for an unknown name or options that do not fit.
std::unique_ptr<Method> makeMethod(const std::string& name, const Options& options);

/// The (V, N, D) stack of the views (a single (V, N, D) tensor is taken as the stack).
at::Tensor stackViews(const std::vector<at::Tensor>& zs);

// The methods (one .cc each); registry.cc maps names to them.
std::unique_ptr<Method> makeVICReg(OptionReader& options);
std::unique_ptr<Method> makeSimCLR(OptionReader& options);
std::unique_ptr<Method> makeTCR(OptionReader& options);
std::unique_ptr<Method> makeBarlow(OptionReader& options);

}  // namespace tssl::methods
