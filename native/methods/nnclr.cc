// NNCLR (Dwibedi et al. 2021) as solo-learn trains it (solo/methods/nnclr.py, solo/losses/nnclr.py): each view's
// L2-normalised projection is replaced by its nearest neighbour (cosine) in a support queue of earlier
// projections, and InfoNCE contrasts that neighbour with the other view's prediction, averaged over both
// directions. After the loss the first view's projections of every rank (gathered, no gradient) enter the queue
// FIFO with their labels (-1 without labels): buffers `queue` (Q × D, starting as normalised Gaussian noise),
// `queue_y` and `queue_ptr`. Options: temperature, queueSize. Logged terms: nnclr, and nn_acc (the neighbour's
// label equals the image's) when the run has labels.
#include <torch/autograd.h>

#include "common/error.h"
#include "methods/method.h"

namespace tssl::methods {
namespace {

class NNCLR final : public Method {
 public:
  NNCLR(double temperature, int64_t queueSize) : temperature_(temperature), queueSize_(queueSize) {}
  const char* name() const override { return "nnclr"; }
  int64_t views() const override { return 2; }
  Heads heads() const override { return {true, false}; }
  bool projectionsOnly() const override { return false; }

  void addModules(MethodModel& m, const ModelSpec& spec) const override {
    const int64_t d = spec.projector.outputDim;
    m.register_buffer("queue", l2normalize(at::randn({queueSize_, d})));
    m.register_buffer("queue_y", at::full({queueSize_}, -1, at::kLong));
    m.register_buffer("queue_ptr", at::zeros({1}, at::kLong));
  }

  losses::LossResult loss(const Outputs& o, LossContext& ctx) const override {
    TSSL_CHECK(ctx.model && o.z.size() == 2 && o.p.size() == 2, "ERR_TORCH_SHAPE", "nnclr takes 2 views with projections and predictions");
    MethodModel& m = *ctx.model;
    const at::Tensor queue = m.buffer("queue"), queueY = m.buffer("queue_y");
    const at::Tensor z1 = l2normalize(o.z[0]), z2 = l2normalize(o.z[1]);
    at::Tensor idx1, nn1, nn2;
    {
      at::NoGradGuard g;
      idx1 = std::get<1>(at::matmul(z1, queue.t()).max(1));
      nn1 = queue.index_select(0, idx1);
      nn2 = queue.index_select(0, std::get<1>(at::matmul(z2, queue.t()).max(1)));
    }
    losses::LossResult r;
    r.loss = contrast(nn1, o.p[1]) / 2 + contrast(nn2, o.p[0]) / 2;
    std::vector<at::Tensor> terms{r.loss.detach().reshape({1})};
    r.termNames = {"nnclr"};
    const int64_t n = z1.size(0);
    const bool labelled = ctx.step.labels.defined();
    if (labelled) {
      terms.push_back((ctx.step.labels == queueY.index_select(0, idx1)).sum().to(at::kFloat).div(double(n)).reshape({1}));
      r.termNames.push_back("nn_acc");
    }
    r.terms = at::cat(terms);
    enqueue(m, z1, labelled ? ctx.step.labels : at::full({n}, -1, at::TensorOptions().dtype(at::kLong).device(z1.device())), ctx.collective);
    return r;
  }

 private:
  /// nnclr_loss_func: cross-entropy of normalised neighbours against normalised predictions, positives on the diagonal.
  at::Tensor contrast(const at::Tensor& nn, const at::Tensor& p) const {
    const at::Tensor logits = at::matmul(l2normalize(nn), l2normalize(p).t()) / temperature_;
    const at::Tensor labels = at::arange(p.size(0), at::TensorOptions().dtype(at::kLong).device(p.device()));
    return at::cross_entropy_loss(logits, labels, {}, at::Reduction::Mean, -100);
  }
  /// dequeue_and_enqueue: every rank's batch (gathered), written at queue_ptr, which wraps around.
  void enqueue(MethodModel& m, const at::Tensor& z, const at::Tensor& y, Collective& c) const {
    at::NoGradGuard g;
    const at::Tensor zs = c.gatherNoGrad(z), ys = c.gatherNoGrad(y);
    const int64_t b = zs.size(0);
    TSSL_CHECK(queueSize_ % b == 0, "ERR_CONFIG", "method nnclr: queueSize ", queueSize_, " must be a multiple of the batch across ranks (", b, ")");
    at::Tensor ptrT = m.buffer("queue_ptr");
    const int64_t ptr = ptrT.item<int64_t>();
    m.buffer("queue").narrow(0, ptr, b).copy_(zs);
    m.buffer("queue_y").narrow(0, ptr, b).copy_(ys);
    ptrT.fill_((ptr + b) % queueSize_);
  }
  double temperature_;
  int64_t queueSize_;
};

}  // namespace

std::unique_ptr<Method> makeNNCLR(OptionReader& r) {
  const double t = r.take("temperature");
  TSSL_CHECK(t > 0, "ERR_CONFIG", "method nnclr: temperature must be > 0, got ", t);
  return std::make_unique<NNCLR>(t, r.takeInt("queueSize", 1));
}

}  // namespace tssl::methods
