// A self-supervised method as the engine runs it, in the lifecycle solo-learn's BaseMethod / BaseMomentumMethod
// give one: the method declares the heads it needs (projector, predictor, teacher copies), its parameter groups,
// its forward from views to outputs, its loss, and what happens after each optimizer step (the teacher's EMA).
// The trainer owns the loop, the optimizer, the online classifier and the data-parallel plumbing; it asks the
// method, never the other way round. One file per method (vicreg.cc, simclr.cc, tcr.cc, barlow.cc, byol.cc,
// mocov3.cc, simsiam.cc, dino.cc, swav.cc, nnclr.cc), listed once in registry.cc. Adding a method: docs/methods.md.
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
  std::vector<at::Tensor> feats;    // online backbone features per view (the online classifier's input: large crops)
  std::vector<at::Tensor> z;        // online projections (DINO: the head's logits; SwAV: normalised projections)
  std::vector<at::Tensor> p;        // predictions (methods with a predictor; SwAV: prototype scores)
  std::vector<at::Tensor> teacher;  // the teacher's outputs (momentum methods: large crops only), without gradient
};

/// Where the step is: the schedules of DINO, SwAV and NNCLR depend on it.
struct StepInfo {
  int64_t step = 0, totalSteps = 0;  // the 0-based optimizer step, of all the run's
  int64_t epoch = 0, epochs = 0;     // the 0-based epoch the step belongs to, of all the run's
  at::Tensor labels;                 // the batch's labels (int64) or undefined (NNCLR's queue_y)
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

class Method;

/// What a loss may use beyond the outputs: the cross-rank statistics, the model (queues, prototypes, a centre:
/// module buffers the loss reads and updates; null for `losses.<name>()`, which only methods without state
/// offer) and the step.
struct LossContext {
  Collective& collective;
  MethodModel* model = nullptr;
  StepInfo step;
};

class Method {
 public:
  virtual ~Method() = default;
  virtual const char* name() const = 0;
  /// Views the loss takes: 2 for the pairwise methods; 0 for any number ≥ 2.
  virtual int64_t views() const = 0;
  /// The heads the method needs beyond backbone and projector; the trainer builds them (methods/model.h).
  virtual Heads heads() const { return {}; }
  /// Modules and buffers of the method's own (DINO's head and centre, SwAV's prototypes and queue, NNCLR's
  /// queue), registered on the model under solo-learn's names; teacher pairs are declared with model.addPair.
  virtual void addModules(MethodModel& /*model*/, const ModelSpec& /*spec*/) const {}
  /// Whether the loss is a function of the projections alone (then `losses.<name>()` can compute it).
  virtual bool projectionsOnly() const { return !heads().predictor && !heads().teacher; }
  /// Views of several sizes (multi-crop): methods that group them by resolution say yes.
  virtual bool multiCrop() const { return false; }
  /// The optimizer's groups, trainable parameters only: backbone, projector (and predictor) by default.
  virtual std::vector<ParamGroup> paramGroups(MethodModel& model) const;
  /// Views → outputs. Default: backbone and projector per view (solo-learn: BatchNorm statistics per crop), or
  /// all views in one pass (`concat`, EMP-SSL's patches); a predictor and a teacher when the heads have them.
  virtual Outputs forward(MethodModel& model, const std::vector<at::Tensor>& views, bool concat) const;
  /// The loss and its logged terms (state updates that follow the loss, such as a queue's, happen here too).
  virtual losses::LossResult loss(const Outputs& out, LossContext& ctx) const = 0;
  /// After backward and the gradients' unscaling, before the optimizer step: clipping, frozen layers (solo-learn's
  /// on_after_backward).
  virtual void afterBackward(MethodModel& /*model*/, const StepInfo& /*step*/) const {}
  /// After every optimizer step (`step`: the 0-based step just taken, of `totalSteps`).
  virtual void afterStep(MethodModel& /*model*/, int64_t /*step*/, int64_t /*totalSteps*/) const {}
};

/// Reads a method's options: each `take` removes a key (ERR_CONFIG when missing); `finish` refuses leftovers.
class OptionReader {
 public:
  OptionReader(std::string method, Options options) : method_(std::move(method)), options_(std::move(options)) {}
  double take(const char* key);
  /// An integer option >= min (counts, epochs, sizes).
  int64_t takeInt(const char* key, int64_t min);
  /// A boolean option (0 or 1 on the wire).
  bool takeBool(const char* key);
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
std::unique_ptr<Method> makeDINO(OptionReader& options);
std::unique_ptr<Method> makeSwAV(OptionReader& options);
std::unique_ptr<Method> makeNNCLR(OptionReader& options);

/// x / max(‖x‖₂, 1e-12) along dim 1 (F.normalize).
at::Tensor l2normalize(const at::Tensor& x);
/// Views grouped by resolution, each group one backbone pass (DINO's and SwAV's multi-crop forward): the
/// features per view, in view order.
std::vector<at::Tensor> backboneByResolution(ResNet& backbone, const std::vector<at::Tensor>& views);
/// How many leading views share the first view's size (the large crops).
int64_t largeCrops(const std::vector<at::Tensor>& views);

}  // namespace tssl::methods
