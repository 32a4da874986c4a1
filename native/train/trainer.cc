#include "train/trainer.h"

#include <torch/autograd.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "common/cpu_allocator.h"
#include "common/device.h"
#include "common/error.h"
#include "common/threads.h"
#include "common/torch_compat.h"
#include "eval/knn.h"
#include "features/normalize.h"
#include "losses/losses.h"
#include "optim/lars.h"

namespace tssl::train {
namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// backbone / projector / classifier registered under solo-learn's names, so named_parameters() gives
// `backbone.layer1.0.conv1.weight`, `projector.0.weight`, `classifier.weight`.
struct MethodModel : torch::nn::Module {
  MethodModel(const TrainConfig& c, int64_t numClasses) {
    backbone = register_module("backbone", ResNet(c.backbone));
    ProjectorOptions p = c.projector;
    p.inputDim = backbone->featureDim();
    projector = register_module("projector", makeProjector(p));
    if (numClasses > 0) classifier = register_module("classifier", torch::nn::Linear(backbone->featureDim(), numClasses));
  }
  ResNet backbone{nullptr};
  torch::nn::Sequential projector{nullptr};
  torch::nn::Linear classifier{nullptr};
};

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL + (a << 6) + (a >> 2));
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  return x ^ (x >> 29);
}

double scheduleLr(double base, double step, double warmup, double total, double start, double minLr) {
  if (warmup <= 0) start = base;
  if (step < warmup) return start + step * (base - start) / std::max(1.0, warmup - 1);
  if (total <= warmup) return base;
  return minLr + 0.5 * (base - minLr) * (1 + std::cos(M_PI * (step - warmup) / (total - warmup)));
}

struct Batch {
  int64_t globalStep = 0;
  std::vector<at::Tensor> views;
  at::Tensor labels;
  double augmentMs = 0;
};

// Bounded queue between the augmentation producer and the training thread.
class BatchQueue {
 public:
  explicit BatchQueue(size_t capacity) : capacity_(capacity) {}
  bool push(Batch&& b) {
    std::unique_lock<std::mutex> lock(mu_);
    notFull_.wait(lock, [&] { return q_.size() < capacity_ || closed_; });
    if (closed_) return false;
    q_.push_back(std::move(b));
    notEmpty_.notify_one();
    return true;
  }
  bool pop(Batch& out) {
    std::unique_lock<std::mutex> lock(mu_);
    notEmpty_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    out = std::move(q_.front());
    q_.pop_front();
    notFull_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    notEmpty_.notify_all();
    notFull_.notify_all();
  }
  void fail(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = e;
  }
  std::exception_ptr error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  size_t capacity_;
  std::deque<Batch> q_;
  bool closed_ = false;
  std::exception_ptr error_;
  std::mutex mu_;
  std::condition_variable notFull_, notEmpty_;
};

std::vector<int64_t> epochOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  std::mt19937_64 rng(mix(seed, 0x5EED0000ULL + uint64_t(epoch)));
  std::shuffle(idx.begin(), idx.end(), rng);
  return idx;
}

at::Tensor evalFeatures(MethodModel& model, const at::Tensor& images, const TrainConfig& c, const at::Device& dev) {
  std::vector<at::Tensor> out;
  const int64_t n = images.size(0);
  for (int64_t s = 0; s < n; s += c.batchSize) {
    features::ChannelStats stats;
    std::copy_n(c.evalMean.begin(), 3, stats.mean.begin());
    std::copy_n(c.evalStd.begin(), 3, stats.std.begin());
    out.push_back(model.backbone->forward(features::toModelInput(images.narrow(0, s, std::min(c.batchSize, n - s)), stats, dev)));
  }
  return at::cat(out, 0);
}

}  // namespace

TrainResult runTraining(const TrainConfig& c, const TrainData& d, const ResumeState* resume,
                        const std::function<void(TrainEvent&&)>& emit, const std::function<bool()>& stopRequested) {
  TSSL_CHECK(d.images.defined() && d.images.scalar_type() == at::kByte && d.images.dim() == 4 && d.images.size(3) == 3,
             "ERR_DATA_FORMAT", "training images must be uint8 (N, H, W, 3)");
  const int64_t n = d.images.size(0);
  TSSL_CHECK(c.batchSize >= 2, "ERR_CONFIG", "batchSize must be >= 2, got ", c.batchSize);
  TSSL_CHECK(n >= c.batchSize, "ERR_CONFIG", "the dataset has ", n, " images, fewer than one batch of ", c.batchSize,
             " (drop_last)");
  TSSL_CHECK(!c.views.empty(), "ERR_CONFIG", "no view pipelines configured");
  const bool hasLabels = d.labels.defined() && c.numClasses > 0;
  const at::Device dev = resolveDevice(c.device, "config.device");
  const Precision precision = parsePrecision(c.precision);
  TSSL_CHECK(precision != Precision::F16Mixed || dev.is_cuda(), "ERR_CONFIG",
             "precision '16-mixed' needs a CUDA device (", c.device, " given); on CPU use 'bf16-mixed'");
  const at::ScalarType autocastDtype = precision == Precision::F16Mixed ? at::kHalf : at::kBFloat16;
  GradScaler scaler(c.scaler, c.gradScaler < 0 ? precision == Precision::F16Mixed : c.gradScaler > 0);
  int64_t skippedSteps = 0, consecutiveNonFinite = 0;
  at::manual_seed(c.seed);

  auto model = std::make_shared<MethodModel>(c, hasLabels ? c.numClasses : 0);
  model->to(dev);
  if (c.channelsLast) {
    at::NoGradGuard g;
    for (auto& p : model->backbone->parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }

  // solo-learn's param groups, all in one LARS: backbone (lr, wd), projector (lr, wd), classifier (clr, 0).
  optim::LARSOptions base(c.lr);
  base.momentum(c.momentum).weight_decay(c.weightDecay).eta(c.eta).clip_lr(c.clipLr).exclude_bias_n_norm(c.excludeBiasAndNorm);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<std::string> groupNames{"backbone", "projector"};
  std::vector<double> groupBaseLr{c.lr, c.lr};
  groups.emplace_back(model->backbone->parameters(), std::make_unique<optim::LARSOptions>(base));
  groups.emplace_back(model->projector->parameters(), std::make_unique<optim::LARSOptions>(base));
  if (model->classifier) {
    optim::LARSOptions clf = base;
    clf.lr(c.classifierLr).weight_decay(0.0);
    groups.emplace_back(model->classifier->parameters(), std::make_unique<optim::LARSOptions>(clf));
    groupNames.push_back("classifier");
    groupBaseLr.push_back(c.classifierLr);
  }
  optim::LARS opt(groups, base);

  const int64_t stepsPerEpoch = n / c.batchSize;  // drop_last
  const int64_t totalSteps = stepsPerEpoch * c.epochs;
  const double warmupSteps = c.warmupEpochs * double(stepsPerEpoch);
  int64_t globalStep = 0;

  auto named = model->named_parameters(true);
  if (resume) {
    std::map<std::string, at::Tensor> targets;
    for (const auto& kv : named) targets.emplace(kv.key(), kv.value());
    for (const auto& kv : model->named_buffers(true)) targets.emplace(kv.key(), kv.value());
    at::NoGradGuard g;
    for (const auto& [k, v] : resume->stateDict) {
      auto it = targets.find(k);
      TSSL_CHECK(it != targets.end(), "ERR_CHECKPOINT_KEYS", "resume: the checkpoint has key ", k, " that the model lacks");
      TSSL_CHECK(it->second.sizes() == v.sizes(), "ERR_CHECKPOINT_KEYS", "resume: ", k, " has shape ",
                 shapeString(v.sizes().vec()), " but the model has ", shapeString(it->second.sizes().vec()));
      it->second.copy_(v);
    }
    for (const auto& kv : named) {
      auto it = resume->momentum.find(kv.key());
      if (it == resume->momentum.end()) continue;
      auto st = std::make_unique<optim::LARSParamState>();
      st->momentum_buffer(it->second.to(kv.value().options()).clone());
      opt.state()[compat::optimizerStateKey(opt.state(), kv.value())] = std::move(st);
    }
    globalStep = resume->globalStep;
    if (resume->ampScale > 0) scaler.load(resume->ampScale, resume->ampGrowthTracker);
  }

  // The fields every event carries.
  auto makeEvent = [&](const char* type, int64_t epoch) {
    TrainEvent e;
    e.type = type;
    e.epoch = epoch;
    e.globalStep = globalStep;
    e.totalSteps = totalSteps;
    e.stepsPerEpoch = stepsPerEpoch;
    e.gradScale = scaler.enabled() ? scaler.scale() : 0;
    e.ampGrowthTracker = scaler.growthTracker();
    e.skippedSteps = skippedSteps;
    return e;
  };
  auto checkpointEvent = [&](int64_t epoch, bool final, bool aborted) {
    TrainEvent e = makeEvent("checkpoint", epoch);
    e.final = final;
    e.aborted = aborted;
    at::NoGradGuard g;
    for (const auto& kv : model->named_parameters(true)) e.stateDict.emplace_back(kv.key(), kv.value().detach().to(at::kCPU).contiguous().clone());
    for (const auto& kv : model->named_buffers(true)) e.stateDict.emplace_back(kv.key(), kv.value().to(at::kCPU).contiguous().clone());
    for (const auto& kv : model->named_parameters(true)) {
      auto it = opt.state().find(compat::optimizerStateKey(opt.state(), kv.value()));
      if (it != opt.state().end())
        e.momentum.emplace_back(kv.key(), static_cast<optim::LARSParamState&>(*it->second).momentum_buffer().to(at::kCPU).clone());
    }
    for (size_t gi = 0; gi < groupNames.size(); ++gi)
      e.groupLrs.emplace_back(groupNames[gi], static_cast<optim::LARSOptions&>(opt.param_groups()[gi].options()).lr());
    emit(std::move(e));
  };

  // Producer: augments batches (globalStep order) on its own thread with a deterministic RNG per step.
  BatchQueue queue(static_cast<size_t>(std::max<int64_t>(1, c.prefetch)));
  const int64_t firstStep = globalStep;
  const int64_t lastStep = c.maxSteps > 0 ? std::min(totalSteps, firstStep + c.maxSteps) : totalSteps;
  std::thread producer([&] {
    try {
      limitThisThread(static_cast<int>(std::max<int64_t>(1, c.producerThreads)));
      at::NoGradGuard g;
      int64_t cachedEpoch = -1;
      std::vector<int64_t> order;
      for (int64_t s = firstStep; s < lastStep; ++s) {
        if (stopRequested()) break;
        const int64_t epoch = s / stepsPerEpoch, inEpoch = s % stepsPerEpoch;
        if (epoch != cachedEpoch) {
          if (c.shuffle) {
            order = epochOrder(n, c.seed, epoch);
          } else {
            order.resize(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
          }
          cachedEpoch = epoch;
        }
        auto t0 = Clock::now();
        at::Tensor index = at::from_blob(order.data() + inEpoch * c.batchSize, {c.batchSize}, at::kLong).clone();
        at::Tensor raw = d.images.index_select(0, index).to(dev);
        Batch b;
        b.globalStep = s;
        if (hasLabels) b.labels = d.labels.index_select(0, index).to(dev);
        std::mt19937_64 rng(mix(c.seed, 0xA06ULL + uint64_t(s)));
        for (int64_t v = 0; v < c.numViews; ++v) {
          const data::ViewAugment& a = c.views[static_cast<size_t>(v) % c.views.size()];
          at::Tensor x = data::augmentBatch(raw, a, rng);
          if (c.channelsLast) x = x.contiguous(at::MemoryFormat::ChannelsLast);
          b.views.push_back(x);
        }
        b.augmentMs = msSince(t0);
        if (!queue.push(std::move(b))) break;
      }
    } catch (...) {
      queue.fail(std::current_exception());
    }
    queue.close();
  });

  applyThreads();
  const bool canKnn = c.knnEvery > 0 && d.valImages.defined() && d.labels.defined() && d.valLabels.defined();
  auto runKnn = [&](int64_t epochDone) {
    if (!canKnn) return;
    model->eval();
    {
      at::NoGradGuard g;
      at::Tensor trainF = evalFeatures(*model, d.images, c, dev);
      at::Tensor valF = evalFeatures(*model, d.valImages, c, dev);
      eval::KnnOptions ko;
      ko.ks.assign(1, c.knnK);
      ko.temperatures.assign(1, c.knnTemperature);
      eval::KnnResult kr = eval::weightedKnn(trainF, d.labels.to(dev), valF, d.valLabels.to(dev), ko);
      const double t1 = kr.top1.at(0), t5 = kr.top5.at(0);
      TrainEvent k = makeEvent("knn", epochDone);
      k.top1 = t1;
      k.top5 = t5;
      emit(std::move(k));
    }
    model->train();
  };
  // The randomly initialised network's kNN accuracy: the baseline that training must beat.
  if (globalStep == 0) runKnn(0);
  TrainResult result;
  double sumAug = 0, sumStep = 0, sumWait = 0;
  double epochLossSum = 0;
  int64_t epochSteps = 0;
  int64_t stepsDone = 0;
  auto runStart = Clock::now();
  auto windowStart = Clock::now();
  int64_t windowImages = 0;
  int64_t epoch = globalStep / stepsPerEpoch;
  bool aborted = false;
  model->train();
  try {
    while (true) {
      auto tw = Clock::now();
      Batch b;
      if (!queue.pop(b)) break;
      const double waitMs = msSince(tw);
      auto ts = Clock::now();
      const int64_t s = b.globalStep;
      epoch = s / stepsPerEpoch;
      double lr = 0;
      for (size_t gi = 0; gi < groupNames.size(); ++gi) {
        const double g = scheduleLr(groupBaseLr[gi], double(s), warmupSteps, double(totalSteps), c.warmupStartLr, c.minLr);
        static_cast<optim::LARSOptions&>(opt.param_groups()[gi].options()).lr(g);
        if (gi == 0) lr = g;
      }
      for (auto& p : model->parameters()) p.mutable_grad() = at::Tensor();

      std::vector<at::Tensor> feats, zs;
      at::Tensor logits;
      {
        // Mixed precision: backbone, projector and classifier under autocast; losses in float32.
        std::optional<AutocastScope> autocast;
        if (precision != Precision::F32) autocast.emplace(dev.type(), autocastDtype);
        if (c.concatViews) {
          at::Tensor f = model->backbone->forward(at::cat(b.views, 0));
          feats.push_back(f);
          zs = model->projector->forward(f).chunk(c.numViews, 0);
        } else {
          for (auto& x : b.views) {
            at::Tensor f = model->backbone->forward(x);
            feats.push_back(f);
            zs.push_back(model->projector->forward(f));
          }
        }
        if (model->classifier) logits = model->classifier->forward(at::cat(feats, 0).detach());
      }
      if (precision != Precision::F32) {
        for (auto& z : zs) z = z.to(at::kFloat);
        if (logits.defined()) logits = logits.to(at::kFloat);
      }
      auto opt_ = [&](const char* k, double dflt) {
        auto it = c.lossOptions.find(k);
        return it == c.lossOptions.end() ? dflt : it->second;
      };
      losses::LossResult lr_;
      if (c.method == "vicreg") {
        losses::VICRegOptions o;
        o.simWeight = opt_("simWeight", o.simWeight);
        o.varWeight = opt_("varWeight", o.varWeight);
        o.covWeight = opt_("covWeight", o.covWeight);
        lr_ = losses::vicreg(zs.at(0), zs.at(1), o);
      } else if (c.method == "barlow") {
        losses::BarlowOptions o;
        o.lambda = opt_("lambda", o.lambda);
        o.scale = opt_("scale", o.scale);
        lr_ = losses::barlow(zs.at(0), zs.at(1), o);
      } else if (c.method == "simclr") {
        losses::SimCLROptions o;
        o.temperature = opt_("temperature", o.temperature);
        lr_ = losses::simclr(at::stack(zs, 0), o);
      } else if (c.method == "tcr") {
        losses::TCROptions o;
        o.eps = opt_("eps", o.eps);
        o.lambda = opt_("lambda", o.lambda);
        lr_ = losses::tcr(at::stack(zs, 0), o);
      } else {
        throw Error("ERR_CONFIG", "unknown method " + c.method);
      }
      at::Tensor total = lr_.loss;
      double clfLoss = 0;
      if (model->classifier) {
        at::Tensor target = b.labels.repeat({c.concatViews ? c.numViews : int64_t(feats.size())});
        at::Tensor ce = at::cross_entropy_loss(logits, target, {}, at::Reduction::Mean, -1);
        total = total + ce;
        clfLoss = ce.item<double>();
      }
      scaler.scaleLoss(total).backward();
      const bool finiteGrads = scaler.unscale(model->parameters());
      if (finiteGrads) {
        opt.step();
      } else {
        ++skippedSteps;  // GradScaler: inf/NaN gradients skip the update and back the scale off
      }
      scaler.update(!finiteGrads);
      const double lossValue = lr_.loss.item<double>();
      // With a grad scaler a non-finite loss is one more skipped step (as under Lightning); without one,
      // or when it persists, the run stops with the step named.
      consecutiveNonFinite = std::isfinite(lossValue) ? 0 : consecutiveNonFinite + 1;
      TSSL_CHECK(consecutiveNonFinite == 0 || (scaler.enabled() && consecutiveNonFinite < 50), "ERR_TORCH_VALUE",
                 "the loss became ", lossValue, " at step ", s,
                 scaler.enabled() ? " for 50 steps in a row" : "", " (lower the learning rate?)");
      const double stepMs = msSince(ts);
      ++globalStep;
      ++stepsDone;
      sumAug += b.augmentMs;
      sumStep += stepMs;
      sumWait += waitMs;
      windowImages += c.batchSize;
      result.lastLoss = lossValue;

      const int64_t inEpoch = s % stepsPerEpoch;
      // The epoch's mean loss (as Lightning's train_loss_epoch); a resumed epoch averages its remaining steps.
      if (inEpoch == 0) {
        epochLossSum = 0;
        epochSteps = 0;
      }
      if (std::isfinite(lossValue)) {
        epochLossSum += lossValue;
        ++epochSteps;
      }
      if (c.logEvery > 0 && (stepsDone % c.logEvery == 0 || inEpoch == stepsPerEpoch - 1)) {
        TrainEvent e = makeEvent("step", epoch);
        e.step = inEpoch;
        e.loss = lossValue;
        e.classifierLoss = clfLoss;
        e.lr = lr;
        for (size_t i = 0; i < lr_.termNames.size(); ++i) e.terms[lr_.termNames[i]] = lr_.terms[int64_t(i)].item<double>();
        e.imagesPerSec = double(windowImages) / std::max(1e-9, msSince(windowStart) / 1000.0);
        e.augmentMs = b.augmentMs;
        e.stepMs = stepMs;
        e.waitMs = waitMs;
        emit(std::move(e));
        windowStart = Clock::now();
        windowImages = 0;
      }
      if (inEpoch == stepsPerEpoch - 1) {
        const int64_t done = epoch + 1;
        TrainEvent e = makeEvent("epoch", done);
        e.loss = epochSteps > 0 ? epochLossSum / double(epochSteps) : lossValue;
        epochSteps = 0;
        emit(std::move(e));
        if (c.knnEvery > 0 && (done % c.knnEvery == 0 || done == c.epochs)) runKnn(done);
        if (c.checkpointEvery > 0 && done % c.checkpointEvery == 0 && done < c.epochs) checkpointEvent(done, false, false);
      }
      if (stopRequested()) {
        aborted = true;
        break;
      }
    }
  } catch (...) {
    queue.close();
    producer.join();
    throw;
  }
  queue.close();
  producer.join();
  if (auto e = queue.error()) std::rethrow_exception(e);
  if (stopRequested()) aborted = true;
  const int64_t completedEpochs = globalStep / stepsPerEpoch;
  checkpointEvent(completedEpochs, true, aborted);
  result.epochs = completedEpochs;
  result.globalStep = globalStep;
  result.aborted = aborted;
  result.skippedSteps = skippedSteps;
  const double secs = std::max(1e-9, msSince(runStart) / 1000.0);
  result.imagesPerSec = double(stepsDone * c.batchSize) / secs;
  if (stepsDone > 0) {
    result.augmentMsPerStep = sumAug / double(stepsDone);
    result.stepMsPerStep = sumStep / double(stepsDone);
    result.waitMsPerStep = sumWait / double(stepsDone);
  }
  return result;
}

}  // namespace tssl::train
