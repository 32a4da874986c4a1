// SwAV (Caron et al. 2020) as solo-learn trains it (solo/methods/swav.py, solo/losses/swav.py,
// solo/utils/sinkhorn_knopp.py): L2-normalised projections scored against prototypes (a weight-normalised,
// bias-free Linear whose rows stay unit vectors: `prototypes.weight_{g,v}`); each large crop's scores, with those
// of the queued projections of earlier batches once the queue has started, go through Sinkhorn-Knopp (the sums
// all-reduced across ranks) to give its soft assignment; every other crop's scores at the temperature predict it.
// The queue (`queue`, 2 × queueSize/world × D) shifts in each step's large-crop projections. The prototypes'
// gradients are dropped for the first freezePrototypesEpochs epochs. Multi-crop: the backbone runs once per
// resolution group, the projector and prototypes once over all crops.
// Options: numPrototypes, temperature, sinkhornIterations, sinkhornEpsilon, queueSize, queueStartEpoch,
// freezePrototypesEpochs. Logged term: swav.
#include <torch/autograd.h>

#include "common/error.h"
#include "models/batch_norm.h"
#include "models/weight_norm.h"
#include "methods/method.h"

namespace tssl::methods {
namespace {

struct Settings {
  int64_t prototypes = 0, iterations = 0, queueSize = 0, queueStartEpoch = 0, freezeEpochs = 0;
  double temperature = 0, epsilon = 0;
};

class SwAV final : public Method {
 public:
  explicit SwAV(Settings s) : s_(s) {}
  const char* name() const override { return "swav"; }
  int64_t views() const override { return 0; }
  bool projectionsOnly() const override { return false; }
  bool multiCrop() const override { return true; }

  void addModules(MethodModel& m, const ModelSpec& spec) const override {
    m.add("prototypes", std::make_shared<WeightNormLinearImpl>(spec.projector.outputDim, s_.prototypes, true));
    if (s_.queueSize > 0) {
      TSSL_CHECK(s_.queueSize % spec.worldSize == 0 && s_.queueSize / spec.worldSize > 0, "ERR_CONFIG", "method swav: queueSize ", s_.queueSize,
                 " must be a positive multiple of the ", spec.worldSize, " ranks");
      m.register_buffer("queue", at::zeros({2, s_.queueSize / spec.worldSize, spec.projector.outputDim}));
    }
  }

  std::vector<ParamGroup> paramGroups(MethodModel& m) const override {
    std::vector<ParamGroup> g = Method::paramGroups(m);
    g.push_back({"prototypes", trainableParameters(m.extra<WeightNormLinearImpl>("prototypes"))});
    return g;
  }

  Outputs forward(MethodModel& m, const std::vector<at::Tensor>& views, bool) const override {
    const int64_t large = largeCrops(views), n = views[0].size(0);
    TSSL_CHECK(large == 2, "ERR_CONFIG", "swav: the first two views must be the large crops and the others smaller, got ", large,
               " views of the first view's size");
    Outputs o;
    const std::vector<at::Tensor> feats = backboneByResolution(m.backbone, views);
    o.feats.assign(feats.begin(), feats.begin() + large);
    const at::Tensor z = l2normalize(forwardSequential(m.projector, at::cat(feats, 0)));
    o.z = z.split(n, 0);
    o.p = m.extra<WeightNormLinearImpl>("prototypes").forward(z).split(n, 0);
    return o;
  }

  losses::LossResult loss(const Outputs& o, LossContext& ctx) const override {
    TSSL_CHECK(ctx.model && o.p.size() >= 2 && o.z.size() == o.p.size(), "ERR_TORCH_SHAPE", "swav takes projections and prototype scores per view");
    MethodModel& m = *ctx.model;
    const int64_t n = o.p[0].size(0);
    const bool useQueue = s_.queueSize > 0 && ctx.step.epoch >= s_.queueStartEpoch;
    at::Tensor queue = s_.queueSize > 0 ? m.buffer("queue") : at::Tensor();
    std::vector<at::Tensor> assignments;
    {
      at::NoGradGuard g;
      for (int64_t i = 0; i < 2; ++i) {
        at::Tensor scores = o.p[size_t(i)].detach();
        if (useQueue) scores = at::cat({scores, m.extra<WeightNormLinearImpl>("prototypes").forward(queue[i])}, 0);
        assignments.push_back(sinkhorn(scores, ctx.collective).narrow(0, 0, n));
      }
    }
    at::Tensor total;
    int64_t terms = 0;
    for (size_t v1 = 0; v1 < assignments.size(); ++v1)
      for (size_t v2 = 0; v2 < o.p.size(); ++v2) {
        if (v2 == v1) continue;
        at::Tensor l = -at::mean(at::sum(assignments[v1] * at::log_softmax(o.p[v2] / s_.temperature, 1), 1));
        total = total.defined() ? total + l : l;
        ++terms;
      }
    total = total / double(terms);
    if (queue.defined()) {
      // Shift the queue by one batch and put this step's large-crop projections in front.
      at::NoGradGuard g;
      const int64_t q = queue.size(1), k = std::min(n, q);
      if (q > k) queue.narrow(1, k, q - k).copy_(queue.narrow(1, 0, q - k).clone());
      queue.narrow(1, 0, k).copy_(at::stack({o.z[0].detach(), o.z[1].detach()}, 0).narrow(1, 0, k));
    }
    losses::LossResult r;
    r.loss = total;
    r.terms = total.detach().reshape({1});
    r.termNames = {"swav"};
    return r;
  }

  void afterBackward(MethodModel& m, const StepInfo& step) const override {
    if (step.epoch < s_.freezeEpochs)
      for (auto& p : m.extra<WeightNormLinearImpl>("prototypes").parameters()) p.mutable_grad() = at::Tensor();
  }

 private:
  /// SinkhornKnopp.forward: Q = exp(scores/ε)ᵀ, normalised to sum 1, then rows (prototypes: 1/K each) and columns
  /// (samples: 1/B each, B counting every rank's) alternately; the row sums all-reduced across ranks.
  at::Tensor sinkhorn(const at::Tensor& scores, Collective& c) const {
    at::Tensor q = at::exp(scores / s_.epsilon).t().contiguous();
    const double b = double(q.size(1) * c.size()), k = double(q.size(0));
    at::Tensor sum = q.sum();
    if (dist::Group* g = c.group()) g->allReduceSum(sum);
    q = q / sum;
    for (int64_t it = 0; it < s_.iterations; ++it) {
      at::Tensor rows = q.sum(1, true);
      if (dist::Group* g = c.group()) g->allReduceSum(rows);
      q = q / rows / k;
      q = q / q.sum(0, true) / b;
    }
    return (q * b).t();
  }
  Settings s_;
};

}  // namespace

std::unique_ptr<Method> makeSwAV(OptionReader& r) {
  Settings s;
  s.prototypes = r.takeInt("numPrototypes", 1);
  s.temperature = r.take("temperature");
  s.iterations = r.takeInt("sinkhornIterations", 1);
  s.epsilon = r.take("sinkhornEpsilon");
  s.queueSize = r.takeInt("queueSize", 0);
  s.queueStartEpoch = r.takeInt("queueStartEpoch", 0);
  s.freezeEpochs = r.takeInt("freezePrototypesEpochs", 0);
  TSSL_CHECK(s.temperature > 0 && s.epsilon > 0, "ERR_CONFIG", "method swav: temperature and sinkhornEpsilon must be > 0");
  return std::make_unique<SwAV>(s);
}

}  // namespace tssl::methods
