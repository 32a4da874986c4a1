// A self-supervised method as the engine runs it, in the lifecycle solo-learn's BaseMethod / BaseMomentumMethod
// give one: the method declares the heads it needs (projector, predictor, teacher copies), its parameter groups,
// its forward from views to outputs, its loss, and what happens after each optimizer step (the teacher's EMA).
// The trainer owns the loop, the optimizer, the online classifier and the data-parallel plumbing; it asks the
// method, never the other way round. One file per method (vicreg.cc, simclr.cc, tcr.cc, barlow.cc, byol.cc,
// mocov3.cc, simsiam.cc), listed once in registry.cc. Adding a method: docs/methods.md.
//
// Options arrive complete: their defaults live in the TypeScript method file (lib/methods/<name>.ts). A missing
// or unknown option is ERR_CONFIG naming it; nothing here falls back to a default.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "distributed/group.h"
#include "losses/losses.h"
#include "methods/model.h"

namespace tssl::methods {

using Options = std::map<std::string, double>;

/// What one step's forward produced, one entry per view (float32 once the trainer has left autocast).
struct Outputs {
  std::vector<at::Tensor> feats;    // online backbone features per forward pass (the online classifier's input)
  std::vector<at::Tensor> z;        // online projections
  std::vector<at::Tensor> p;        // predictions (methods with a predictor)
  std::vector<at::Tensor> teacher;  // the teacher's projections (momentum methods), without gradient
};

/// The cross-rank statistics a loss may need. In one process every call is the identity (rank 0 of 1), so a
/// loss written once against it serves a single process and one rank of a data-parallel job alike.
class Collective {
 public:
  virtual ~Collective() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t size() const = 0;
  /// solo-learn's GatherLayer: every rank's `x` concatenated; backward sums over ranks, returns this rank's slice.
  virtual at::Tensor gather(const at::Tensor& x) = 0;
  /// solo-learn's concat_all_gather_no_grad (MoCo's keys).
  virtual at::Tensor gatherNoGrad(const at::Tensor& x) = 0;
  /// The data-parallel group; null in one process.
  virtual dist::Group* group() = 0;
};

class LocalCollective final : public Collective {
 public:
  int64_t rank() const override { return 0; }
  int64_t size() const override { return 1; }
  at::Tensor gather(const at::Tensor& x) override { return x; }
  at::Tensor gatherNoGrad(const at::Tensor& x) override { return x.detach(); }
  dist::Group* group() override { return nullptr; }
};

class GroupCollective final : public Collective {
 public:
  explicit GroupCollective(dist::Group& g) : g_(g) {}
  int64_t rank() const override { return g_.rank(); }
  int64_t size() const override { return g_.size(); }
  at::Tensor gather(const at::Tensor& x) override;
  at::Tensor gatherNoGrad(const at::Tensor& x) override;
  dist::Group* group() override { return &g_; }

 private:
  dist::Group& g_;
};

/// A LARS parameter group as a method declares it (solo-learn's learnable_params entries).
struct ParamGroup {
  std::string name;                // the module prefix in the state dict: backbone, projector, predictor
  std::vector<at::Tensor> params;  // trainable parameters only
  bool staticLr = false;           // solo-learn's static_lr: the schedule leaves it at the base lr
};

class Method {
 public:
  virtual ~Method() = default;
  virtual const char* name() const = 0;
  /// Views the loss takes: 2 for the pairwise methods; 0 for any number ≥ 2.
  virtual int64_t views() const = 0;
  /// The heads the method needs beyond backbone and projector; the trainer builds them (methods/model.h).
  virtual Heads heads() const { return {}; }
  /// The optimizer's groups, trainable parameters only: backbone, projector (and predictor) by default.
  virtual std::vector<ParamGroup> paramGroups(MethodModel& model) const;
  /// Views → outputs. Default: backbone and projector per view (solo-learn: BatchNorm statistics per crop), or
  /// all views in one pass (`concat`, EMP-SSL's patches); a predictor and a teacher when the heads have them.
  virtual Outputs forward(MethodModel& model, const std::vector<at::Tensor>& views, bool concat) const;
  /// The loss and its logged terms.
  virtual losses::LossResult loss(const Outputs& out, Collective& c) const = 0;
  /// After every optimizer step (`step`: the 0-based step just taken, of `totalSteps`).
  virtual void afterStep(MethodModel& /*model*/, int64_t /*step*/, int64_t /*totalSteps*/) const {}
};

/// Reads a method's options: each `take` removes a key (ERR_CONFIG when missing); `finish` refuses leftovers.
class OptionReader {
 public:
  OptionReader(std::string method, Options options) : method_(std::move(method)), options_(std::move(options)) {}
  double take(const char* key);
  void finish() const;
  const std::string& method() const { return method_; }

 private:
  std::string method_;
  Options options_;
};

/// The method called `name` with its options; ERR_CONFIG for an unknown name or options that do not fit.
std::unique_ptr<Method> makeMethod(const std::string& name, const Options& options);

/// The (V, N, D) stack of the views (a single (V, N, D) tensor is taken as the stack).
at::Tensor stackViews(const std::vector<at::Tensor>& zs);

/// A loss on projections alone (losses.<name>() in TS): refuses methods whose loss needs a predictor or teacher.
losses::LossResult lossOnProjections(const Method& m, const std::vector<at::Tensor>& zs);

// The methods (one .cc each); registry.cc maps names to them.
std::unique_ptr<Method> makeVICReg(OptionReader& options);
std::unique_ptr<Method> makeSimCLR(OptionReader& options);
std::unique_ptr<Method> makeTCR(OptionReader& options);
std::unique_ptr<Method> makeBarlow(OptionReader& options);
std::unique_ptr<Method> makeBYOL(OptionReader& options);
std::unique_ptr<Method> makeMoCoV3(OptionReader& options);
std::unique_ptr<Method> makeSimSiam(OptionReader& options);

}  // namespace tssl::methods
