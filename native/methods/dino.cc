// DINO (Caron et al. 2021) as solo-learn trains a ResNet with it (solo/methods/dino.py, solo/losses/dino.py):
// student and EMA teacher each end in a DINO head (an MLP, L2 normalisation, a weight-normalised bias-free
// Linear onto the prototypes: `head.mlp.*`, `head.last_layer.weight_{g,v}`, and `momentum_head.*`). The teacher
// sees the large crops only; its outputs are centred (a buffer `dino_loss_func.center`, an EMA of the batch mean,
// all-reduced across ranks) and sharpened by the teacher temperature (warmed up linearly per epoch); the student's
// log-softmax at its own temperature takes the cross-entropy against every teacher view but its own. The last
// layer's gradients are dropped for the first freezeLastLayerEpochs epochs; clipGrad > 0 clips each backbone
// parameter's gradient norm. Multi-crop: the backbone runs once per resolution group, the head once over all.
// Options: numPrototypes, normLastLayer, studentTemperature, teacherTemperature, warmupTeacherTemperature,
// warmupTeacherTemperatureEpochs, centerMomentum, freezeLastLayerEpochs, clipGrad, baseTau, finalTau.
// Logged term: dino.
#include <torch/autograd.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/linear.h>

#include "common/error.h"
#include "models/batch_norm.h"
#include "models/weight_norm.h"
#include "methods/momentum.h"

namespace tssl::methods {
namespace {

/// solo-learn's DINOHead: mlp (Linear [BN] GELU …, Linear → bottleneck), normalise, last_layer.
struct DINOHeadImpl : torch::nn::Module {
  DINOHeadImpl(const ProjectorOptions& mlpOptions, int64_t prototypes, bool normLastLayer) {
    mlp = register_module("mlp", makeProjector(mlpOptions));
    // _init_weights: trunc_normal_(std=0.02) (its ±2 bounds are absolute, ~100σ: a plain normal) and zero biases.
    at::NoGradGuard g;
    for (auto& m : *mlp)
      if (auto* l = m.ptr()->as<torch::nn::LinearImpl>()) {
        l->weight.normal_(0, 0.02).clamp_(-2, 2);
        if (l->bias.defined()) l->bias.zero_();
      }
    lastLayer = register_module("last_layer", WeightNormLinear(mlpOptions.outputDim, prototypes, normLastLayer));
  }
  at::Tensor forward(const at::Tensor& x) { return lastLayer->forward(l2normalize(forwardSequential(mlp, x))); }
  torch::nn::Sequential mlp{nullptr};
  WeightNormLinear lastLayer{nullptr};
};

/// Holds the centre under solo-learn's name (`dino_loss_func.center`).
struct CenterImpl : torch::nn::Module {
  explicit CenterImpl(int64_t k) { center = register_buffer("center", at::zeros({1, k})); }
  at::Tensor center;
};

struct Settings {
  int64_t prototypes = 0;
  bool normLastLayer = true;
  double studentTemp = 0, teacherTemp = 0, warmupTeacherTemp = 0, centerMomentum = 0, clipGrad = 0;
  int64_t warmupEpochs = 0, freezeLastLayerEpochs = 0;
};

class DINO final : public MomentumMethod {
 public:
  DINO(TauSchedule tau, Settings s) : MomentumMethod(tau), s_(s) {}
  const char* name() const override { return "dino"; }
  int64_t views() const override { return 0; }
  Heads heads() const override { return {false, true, false}; }
  bool projectionsOnly() const override { return false; }
  bool multiCrop() const override { return true; }

  void addModules(MethodModel& m, const ModelSpec& spec) const override {
    ProjectorOptions mlp = spec.projector;
    mlp.inputDim = m.backbone->featureDim();
    m.add("head", std::make_shared<DINOHeadImpl>(mlp, s_.prototypes, s_.normLastLayer));
    m.add("momentum_head", std::make_shared<DINOHeadImpl>(mlp, s_.prototypes, s_.normLastLayer));
    m.addPair("momentum_head", "head");
    m.add("dino_loss_func", std::make_shared<CenterImpl>(s_.prototypes));
  }

  std::vector<ParamGroup> paramGroups(MethodModel& m) const override {
    return {{"backbone", trainableParameters(*m.backbone)}, {"head", trainableParameters(m.extra<DINOHeadImpl>("head"))}};
  }

  Outputs forward(MethodModel& m, const std::vector<at::Tensor>& views, bool) const override {
    const int64_t large = largeCrops(views), n = views[0].size(0);
    TSSL_CHECK(large == 2, "ERR_CONFIG", "dino: the first two views must be the large (global) crops and the others smaller, got ", large,
               " views of the first view's size");
    Outputs o;
    const std::vector<at::Tensor> feats = backboneByResolution(m.backbone, views);
    o.feats.assign(feats.begin(), feats.begin() + large);
    o.z = m.extra<DINOHeadImpl>("head").forward(at::cat(feats, 0)).split(n, 0);
    // The teacher: the large crops, no gradient, train mode (its own BatchNorm statistics).
    at::NoGradGuard ng;
    const std::vector<at::Tensor> globals(views.begin(), views.begin() + large);
    const std::vector<at::Tensor> tf = backboneByResolution(m.momentumBackbone, globals);
    o.teacher = m.extra<DINOHeadImpl>("momentum_head").forward(at::cat(tf, 0)).split(n, 0);
    return o;
  }

  losses::LossResult loss(const Outputs& o, LossContext& ctx) const override {
    TSSL_CHECK(ctx.model && !o.teacher.empty() && o.z.size() >= o.teacher.size(), "ERR_TORCH_SHAPE",
               "dino takes the student's and the teacher's head outputs");
    at::Tensor& center = ctx.model->extra<CenterImpl>("dino_loss_func").center;
    const double temp = teacherTemperature(ctx.step.epoch);
    const at::Tensor teacherAll = at::cat(o.teacher, 0);
    const at::Tensor q = at::softmax((teacherAll - center) / temp, -1).detach();
    const std::vector<at::Tensor> qs = q.chunk(int64_t(o.teacher.size()), 0);
    at::Tensor total;
    int64_t terms = 0;
    for (size_t iq = 0; iq < qs.size(); ++iq)
      for (size_t iv = 0; iv < o.z.size(); ++iv) {
        if (iv == iq) continue;  // the student's view is never compared with the teacher's of the same view
        at::Tensor l = at::sum(-qs[iq] * at::log_softmax(o.z[iv] / s_.studentTemp, -1), -1).mean();
        total = total.defined() ? total + l : l;
        ++terms;
      }
    total = total / double(terms);
    updateCenter(center, teacherAll, ctx.collective);
    losses::LossResult r;
    r.loss = total;
    r.terms = total.detach().reshape({1});
    r.termNames = {"dino"};
    return r;
  }

  void afterBackward(MethodModel& m, const StepInfo& step) const override {
    at::NoGradGuard g;
    if (s_.clipGrad > 0)
      for (auto& p : m.backbone->parameters()) {
        if (!p.grad().defined()) continue;
        const double coef = s_.clipGrad / (p.grad().norm(2).item<double>() + 1e-6);
        if (coef < 1) p.mutable_grad().mul_(coef);
      }
    if (step.epoch < s_.freezeLastLayerEpochs)
      for (auto& p : m.extra<DINOHeadImpl>("head").lastLayer->parameters()) p.mutable_grad() = at::Tensor();
  }

 private:
  /// np.linspace(warmup, teacher, warmupEpochs) for the first epochs, then the teacher temperature.
  double teacherTemperature(int64_t epoch) const {
    if (epoch >= s_.warmupEpochs) return s_.teacherTemp;
    if (s_.warmupEpochs == 1) return s_.warmupTeacherTemp;
    return s_.warmupTeacherTemp + (s_.teacherTemp - s_.warmupTeacherTemp) * double(epoch) / double(s_.warmupEpochs - 1);
  }
  void updateCenter(at::Tensor& center, const at::Tensor& teacher, Collective& c) const {
    at::NoGradGuard g;
    at::Tensor batch = at::sum(teacher, 0, true);
    if (dist::Group* group = c.group()) {
      group->allReduceSum(batch);
      batch = batch / double(c.size());
    }
    batch = batch / double(teacher.size(0));
    center.copy_(center * s_.centerMomentum + batch * (1 - s_.centerMomentum));
  }
  Settings s_;
};

}  // namespace

std::unique_ptr<Method> makeDINO(OptionReader& r) {
  Settings s;
  s.prototypes = r.takeInt("numPrototypes", 1);
  s.normLastLayer = r.takeBool("normLastLayer");
  s.studentTemp = r.take("studentTemperature");
  s.teacherTemp = r.take("teacherTemperature");
  s.warmupTeacherTemp = r.take("warmupTeacherTemperature");
  s.warmupEpochs = r.takeInt("warmupTeacherTemperatureEpochs", 0);
  s.centerMomentum = r.take("centerMomentum");
  s.freezeLastLayerEpochs = r.takeInt("freezeLastLayerEpochs", 0);
  s.clipGrad = r.take("clipGrad");
  TSSL_CHECK(s.studentTemp > 0 && s.teacherTemp > 0 && s.warmupTeacherTemp > 0, "ERR_CONFIG", "method dino: temperatures must be > 0");
  TSSL_CHECK(s.clipGrad >= 0, "ERR_CONFIG", "method dino: clipGrad must be >= 0 (0: off), got ", s.clipGrad);
  TSSL_CHECK(s.centerMomentum >= 0 && s.centerMomentum <= 1, "ERR_CONFIG", "method dino: centerMomentum must be in [0, 1], got ", s.centerMomentum);
  return std::make_unique<DINO>(TauSchedule::read(r), s);
}

}  // namespace tssl::methods
