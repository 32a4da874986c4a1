#include "train/trainer.h"

#include <torch/autograd.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "common/device.h"
#include "common/error.h"
#include "common/threads.h"
#include "common/torch_compat.h"
#include "distributed/reducer.h"
#include "distributed/sync_batchnorm.h"
#include "eval/knn.h"
#include "features/normalize.h"
#include "methods/method.h"
#include "models/batch_norm.h"
#include "models/state_dict.h"
#include "optim/lars.h"
#include "optim/schedule.h"
#include "train/profile.h"

#include <ATen/record_function.h>

namespace tssl::train {
namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

using methods::MethodModel;

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL + (a << 6) + (a >> 2));
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  return x ^ (x >> 29);
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

constexpr size_t kPrefetch = 2;  // batches the producer may run ahead of the training thread

// ---------------------------------------------------------------------------------------- parameter groups
// solo-learn's groups, all in one LARS: the method's (backbone, projector, predictor: lr, wd; static-lr groups keep
// their base lr), then the online classifier (classifier lr, no wd). Trainable parameters only: no teacher.
struct ParamGroups {
  std::unique_ptr<optim::LARS> opt;
  std::vector<std::string> names;
  std::vector<double> baseLr;
  std::vector<bool> staticLr;
  void setLr(int64_t step, double warmupSteps, double totalSteps, const TrainConfig& c) {
    for (size_t gi = 0; gi < names.size(); ++gi)
      static_cast<optim::LARSOptions&>(opt->param_groups()[gi].options())
          .lr(staticLr[gi] ? baseLr[gi] : optim::warmupCosineLr(double(step), warmupSteps, totalSteps, baseLr[gi], c.warmupStartLr, c.minLr));
  }
  double lr(size_t group) { return static_cast<optim::LARSOptions&>(opt->param_groups()[group].options()).lr(); }
};

ParamGroups makeParamGroups(MethodModel& model, const methods::Method& method, const TrainConfig& c) {
  optim::LARSOptions base(c.lr);
  base.momentum(c.momentum).dampening(c.dampening).weight_decay(c.weightDecay).nesterov(c.nesterov).eta(c.eta).eps(c.eps);
  base.clip_lr(c.clipLr).exclude_bias_n_norm(c.excludeBiasAndNorm).lars(c.lars);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  ParamGroups g;
  for (auto& mg : method.paramGroups(model)) {
    groups.emplace_back(mg.params, std::make_unique<optim::LARSOptions>(base));
    g.names.push_back(mg.name);
    g.baseLr.push_back(c.lr);
    g.staticLr.push_back(mg.staticLr);
  }
  if (model.classifier) {
    optim::LARSOptions clf = base;
    clf.lr(c.classifierLr).weight_decay(0.0);
    groups.emplace_back(model.classifier->parameters(), std::make_unique<optim::LARSOptions>(clf));
    g.names.push_back("classifier");
    g.baseLr.push_back(c.classifierLr);
    g.staticLr.push_back(false);
  }
  g.opt = std::make_unique<optim::LARS>(groups, base);
  return g;
}

// ---------------------------------------------------------------------------------------- resume
// Weights and buffers by solo-learn name, LARS momentum by parameter name, the loss scale; the global step.
int64_t applyResume(const ResumeState& r, MethodModel& model, optim::LARS& opt, GradScaler& scaler, const std::string& methodName) {
  // Every module but the online classifier must be in the file: a teacher or predictor restarted from random
  // weights would silently be a different run.
  std::set<std::string> have;
  for (const auto& kv : r.stateDict) have.insert(kv.first);
  std::map<std::string, int64_t> missing;  // module → missing keys
  for (const auto& kv : model.named_parameters(true))
    if (!have.count(kv.key())) ++missing[kv.key().substr(0, kv.key().find('.'))];
  for (const auto& kv : model.named_buffers(true))
    if (!have.count(kv.key())) ++missing[kv.key().substr(0, kv.key().find('.'))];
  missing.erase("classifier");
  if (r.backboneOnly) {
    for (auto it = missing.begin(); it != missing.end();) it = it->first == "backbone" ? std::next(it) : missing.erase(it);
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& [m, n] : missing) list += (list.empty() ? "" : ", ") + m + " (" + std::to_string(n) + " tensors)";
    throw Error("ERR_CHECKPOINT_FORMAT", "resume: the checkpoint lacks " + list + ", which method " + methodName +
                                             " trains; resume from a checkpoint of the same method and heads");
  }
  loadStateDict(model, r.stateDict, KeyPolicy::AllowMissing, "resume: ");
  if (r.backboneOnly && model.hasTeacher()) {
    at::NoGradGuard g;
    for (auto& [teacher, student] : model.momentumPairs()) teacher.copy_(student);
  }
  for (const auto& kv : model.named_parameters(true)) {
    auto it = r.momentum.find(kv.key());
    if (it == r.momentum.end()) continue;
    auto st = std::make_unique<optim::LARSParamState>();
    st->momentum_buffer(it->second.to(kv.value().options()).clone());
    opt.state()[compat::optimizerStateKey(opt.state(), kv.value())] = std::move(st);
  }
  if (r.ampScale > 0) scaler.load(r.ampScale, r.ampGrowthTracker);
  return r.globalStep;
}

// ---------------------------------------------------------------------------------------- batch producer
// Augments batches in global-step order on its own thread, with a deterministic RNG per step, kPrefetch ahead.
class BatchProducer {
 public:
  BatchProducer(const TrainConfig& c, const TrainData& d, const at::Device& dev, int64_t firstStep, int64_t lastStep, int64_t stepsPerEpoch,
                const std::function<bool()>& stopRequested)
      : queue_(kPrefetch), thread_([=, &c, &d, &stopRequested] { run(c, d, dev, firstStep, lastStep, stepsPerEpoch, stopRequested); }) {}
  /// DistributedSampler's shard with drop_last: the epoch's order cut to a multiple of the world size, then
  /// every world-size-th index from the rank's own.
  static std::vector<int64_t> shard(std::vector<int64_t> order, int64_t rank, int64_t world) {
    if (world <= 1) return order;
    const int64_t per = int64_t(order.size()) / world;
    std::vector<int64_t> mine(static_cast<size_t>(per));
    for (int64_t i = 0; i < per; ++i) mine[size_t(i)] = order[size_t(rank + i * world)];
    return mine;
  }
  ~BatchProducer() { finish(); }
  bool next(Batch& b) { return queue_.pop(b); }
  /// Stops the thread (a pending push returns) and rethrows what it failed with, if anything.
  void finish() {
    queue_.close();
    if (thread_.joinable()) thread_.join();
  }
  std::exception_ptr error() { return queue_.error(); }

 private:
  void run(const TrainConfig& c, const TrainData& d, at::Device dev, int64_t firstStep, int64_t lastStep, int64_t stepsPerEpoch,
           const std::function<bool()>& stopRequested) {
    try {
      limitThisThread(1);
      at::NoGradGuard g;
      const int64_t n = d.images.size(0);
      const int64_t rank = c.dist ? c.dist->rank : 0, world = c.dist ? c.dist->worldSize : 1;
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
          order = shard(std::move(order), rank, world);
          cachedEpoch = epoch;
        }
        auto t0 = Clock::now();
        at::Tensor index = at::from_blob(order.data() + inEpoch * c.batchSize, {c.batchSize}, at::kLong).clone();
        at::Tensor raw = d.images.index_select(0, index).to(dev);
        Batch b;
        b.globalStep = s;
        if (d.labels.defined() && c.numClasses > 0) b.labels = d.labels.index_select(0, index).to(dev);
        // Each rank draws its own augmentations (rank 0 the same as a single-process run).
        std::mt19937_64 rng(rank == 0 ? mix(c.seed, 0xA06ULL + uint64_t(s)) : mix(mix(c.seed, 0xA06ULL + uint64_t(s)), 0xD157ULL + uint64_t(rank)));
        for (int64_t v = 0; v < c.numViews; ++v) {
          const data::ViewAugment& a = c.views[static_cast<size_t>(v) % c.views.size()];
          at::Tensor x = data::augmentBatch(raw, a, rng);
          if (c.channelsLast) x = x.contiguous(at::MemoryFormat::ChannelsLast);
          b.views.push_back(x);
        }
        b.augmentMs = msSince(t0);
        if (!queue_.push(std::move(b))) break;
      }
    } catch (...) {
      queue_.fail(std::current_exception());
    }
    queue_.close();
  }

  BatchQueue queue_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------- one step
struct StepOutcome {
  losses::LossResult ssl;  // the method's loss and its terms
  double loss = 0, classifierLoss = 0;
  bool finiteGrads = true;
};

// Forward (under autocast for mixed precision; losses in float32), the method's loss + the online classifier's
// cross-entropy on detached features, backward through the grad scaler, and the LARS step unless skipped.
StepOutcome trainStep(MethodModel& model, const methods::Method& method, const Batch& b, const TrainConfig& c, const at::Device& dev,
                      optim::LARS& opt, GradScaler& scaler, methods::Collective& collective, dist::GradReducer* reducer,
                      BatchNormOverride* syncBatchNorm, const std::vector<at::Tensor>& trainable, const methods::StepInfo& info) {
  for (auto& p : trainable) p.mutable_grad() = at::Tensor();
  methods::Outputs o;
  at::Tensor logits;
  {
    RECORD_USER_SCOPE(kPhaseForward);
    BatchNormOverrideScope bn(syncBatchNorm);  // null: each BatchNorm layer's own forward
    std::optional<AutocastScope> autocast;
    if (c.precision != Precision::F32) autocast.emplace(dev.type(), c.precision == Precision::F16Mixed ? at::kHalf : at::kBFloat16);
    o = method.forward(model, b.views, c.concatViews);
    if (model.classifier) logits = model.classifier->forward(at::cat(o.feats, 0).detach());
  }
  if (c.precision != Precision::F32) {
    for (auto* list : {&o.z, &o.p, &o.teacher})
      for (auto& t : *list) t = t.to(at::kFloat);
    if (logits.defined()) logits = logits.to(at::kFloat);
  }
  StepOutcome out;
  at::Tensor total;
  {
    RECORD_USER_SCOPE(kPhaseLoss);
    methods::LossContext ctx{collective, &model, info};
    out.ssl = method.loss(o, ctx);
    total = out.ssl.loss;
    if (model.classifier) {
      at::Tensor target = b.labels.repeat({c.concatViews ? c.numViews : int64_t(o.feats.size())});
      at::Tensor ce = at::cross_entropy_loss(logits, target, {}, at::Reduction::Mean, -1);
      total = total + ce;
      out.classifierLoss = ce.item<double>();
    }
  }
  {
    RECORD_USER_SCOPE(kPhaseBackward);
    if (reducer) reducer->begin();
    scaler.scaleLoss(total).backward();
    if (reducer) reducer->finish();  // every rank now holds the same averaged gradients
  }
  {
    RECORD_USER_SCOPE(kPhaseOptimizer);
    out.finiteGrads = scaler.unscale(trainable);
    method.afterBackward(model, info);  // clipping, frozen layers (on unscaled gradients)
    if (out.finiteGrads) opt.step();    // else GradScaler: inf/NaN gradients skip the update and back the scale off
    scaler.update(!out.finiteGrads);
    method.afterStep(model, info.step, info.totalSteps);  // solo-learn's on_train_batch_end: the teacher's EMA
  }
  out.loss = out.ssl.loss.item<double>();
  return out;
}

// ---------------------------------------------------------------------------------------- snapshot
// A checkpoint event: CPU copies of every parameter and buffer, the momentum buffers, each group's lr.
void fillSnapshot(TrainEvent& e, MethodModel& model, ParamGroups& groups) {
  at::NoGradGuard g;
  for (const auto& kv : model.named_parameters(true)) {
    e.parameterNames.push_back(kv.key());
    e.stateDict.emplace_back(kv.key(), kv.value().detach().to(at::kCPU).contiguous().clone());
  }
  for (const auto& kv : model.named_buffers(true)) e.stateDict.emplace_back(kv.key(), kv.value().to(at::kCPU).contiguous().clone());
  for (const auto& kv : model.named_parameters(true)) {
    auto it = groups.opt->state().find(compat::optimizerStateKey(groups.opt->state(), kv.value()));
    if (it != groups.opt->state().end())
      e.momentum.emplace_back(kv.key(), static_cast<optim::LARSParamState&>(*it->second).momentum_buffer().to(at::kCPU).clone());
  }
  for (size_t gi = 0; gi < groups.names.size(); ++gi) e.groupLrs.emplace_back(groups.names[gi], groups.lr(gi));
}

// ---------------------------------------------------------------------------------------- statistics
// Run totals, the epoch's mean loss (Lightning's train_loss_epoch; a resumed epoch averages its remaining
// steps) and images/s over the steps since the last step event.
struct RunStats {
  Clock::time_point start = Clock::now(), windowStart = Clock::now();
  double sumAug = 0, sumStep = 0, sumWait = 0, epochLossSum = 0, sumComm = 0, sumCommWait = 0;
  int64_t stepsDone = 0, epochSteps = 0, windowImages = 0;
  void add(const Batch& b, double stepMs, double waitMs, double loss, int64_t inEpoch, int64_t batchSize) {
    ++stepsDone;
    sumAug += b.augmentMs;
    sumStep += stepMs;
    sumWait += waitMs;
    windowImages += batchSize;
    if (inEpoch == 0) epochLossSum = 0, epochSteps = 0;
    if (std::isfinite(loss)) epochLossSum += loss, ++epochSteps;
  }
  double epochLoss(double last) {
    const double v = epochSteps > 0 ? epochLossSum / double(epochSteps) : last;
    epochSteps = 0;
    return v;
  }
  double windowImagesPerSec() {
    const double v = double(windowImages) / std::max(1e-9, msSince(windowStart) / 1000.0);
    windowStart = Clock::now();
    windowImages = 0;
    return v;
  }
  void finish(TrainResult& r, int64_t batchSize) const {
    r.imagesPerSec = double(stepsDone * batchSize) / std::max(1e-9, msSince(start) / 1000.0);
    if (stepsDone == 0) return;
    r.augmentMsPerStep = sumAug / double(stepsDone);
    r.stepMsPerStep = sumStep / double(stepsDone);
    r.waitMsPerStep = sumWait / double(stepsDone);
    r.commMsPerStep = sumComm / double(stepsDone);
    r.commWaitMsPerStep = sumCommWait / double(stepsDone);
  }
};

void checkInputs(const TrainConfig& c, const TrainData& d, const at::Device& dev) {
  TSSL_CHECK(d.images.defined() && d.images.scalar_type() == at::kByte && d.images.dim() == 4 && d.images.size(3) == 3, "ERR_DATA_FORMAT",
             "training images must be uint8 (N, H, W, 3)");
  TSSL_CHECK(c.batchSize >= 2, "ERR_CONFIG", "batchSize must be >= 2, got ", c.batchSize);
  const int64_t world = c.dist ? c.dist->worldSize : 1;
  TSSL_CHECK(d.images.size(0) / world >= c.batchSize, "ERR_CONFIG", "the dataset has ", d.images.size(0), " images, fewer than one batch of ",
             c.batchSize, world > 1 ? concat(" per rank × ", world, " ranks") : std::string(), " (drop_last)");
  TSSL_CHECK(!c.views.empty(), "ERR_CONFIG", "no view pipelines configured");
  TSSL_CHECK(c.precision != Precision::F16Mixed || dev.is_cuda(), "ERR_CONFIG", "precision '16-mixed' needs a CUDA device (", c.device,
             " given); on CPU use 'bf16-mixed'");
}

}  // namespace

TrainResult runTraining(const TrainConfig& c, const TrainData& d, const ResumeState* resume, const std::function<void(TrainEvent&&)>& emit,
                        const std::function<bool()>& stopRequested) {
  const at::Device dev = resolveDevice(c.device, "config.device");
  checkInputs(c, d, dev);
  // Data-parallel: the rendezvous comes first (a missing rank is named before any work starts).
  std::shared_ptr<dist::Group> group = c.dist ? dist::connect(*c.dist, dev) : nullptr;
  const bool lead = !group || group->rank() == 0;  // rank 0 alone reports, evaluates and checkpoints
  std::unique_ptr<methods::Collective> collective;
  if (group) collective = std::make_unique<methods::GroupCollective>(*group);
  else collective = std::make_unique<methods::LocalCollective>();
  const int64_t world = group ? group->size() : 1;
  const std::unique_ptr<methods::Method> method = methods::makeMethod(c.method, c.lossOptions);  // resolved once
  for (const auto& v : c.views)
    TSSL_CHECK(v.size == c.views[0].size || method->multiCrop(), "ERR_CONFIG", "method ", c.method, " takes views of one size (", c.views[0].size,
               " and ", v.size, " given); multi-crop is for dino and swav");
  const bool hasLabels = d.labels.defined() && c.numClasses > 0;
  GradScaler scaler(c.scaler, c.gradScaler.value_or(c.precision == Precision::F16Mixed));
  int64_t skippedSteps = 0, consecutiveNonFinite = 0;
  at::manual_seed(c.seed);

  methods::ModelSpec spec;
  spec.backbone = c.backbone;
  spec.projector = c.projector;
  spec.heads = method->heads();
  TSSL_CHECK(spec.heads.predictor == c.predictor.has_value(), "ERR_CONFIG", "method ", c.method,
             spec.heads.predictor ? " needs a predictor (config.predictor)" : " has no predictor, but config.predictor is set");
  if (c.predictor) spec.predictor = *c.predictor;
  spec.numClasses = hasLabels ? c.numClasses : 0;
  spec.worldSize = world;
  auto model = std::make_shared<MethodModel>(spec);
  method->addModules(*model, spec);
  model->startTeacher();
  model->to(dev);
  if (c.channelsLast) {
    at::NoGradGuard g;
    for (auto& p : model->parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
  const std::vector<at::Tensor> trainable = model->trainableParameters();
  ParamGroups groups = makeParamGroups(*model, *method, c);

  const int64_t stepsPerEpoch = d.images.size(0) / world / c.batchSize;  // drop_last (of the sampler and the loader)
  const int64_t totalSteps = stepsPerEpoch * c.epochs;
  const double warmupSteps = c.warmupEpochs * double(stepsPerEpoch);
  int64_t globalStep = resume ? applyResume(*resume, *model, *groups.opt, scaler, c.method) : 0;
  std::unique_ptr<dist::GradReducer> reducer;
  std::unique_ptr<dist::SyncBatchNorm> syncBatchNorm;
  if (group) {
    // Identical weights everywhere: rank 0's parameters and buffers (teacher included), as DDP's constructor
    // broadcasts them.
    at::NoGradGuard g;
    auto share = [&](const at::Tensor& t) {
      at::Tensor tmp = t.contiguous().clone();
      group->broadcast(tmp, 0);
      t.copy_(tmp);
    };
    for (const auto& p : model->parameters()) share(p);
    for (const auto& b : model->buffers()) share(b);
    if (world > 1) reducer = std::make_unique<dist::GradReducer>(trainable, *group, c.dist->bucketMb);
    if (c.dist->syncBatchNorm) syncBatchNorm = std::make_unique<dist::SyncBatchNorm>(*group);
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
  auto checkpoint = [&](int64_t epoch, bool final, bool aborted) {
    if (!lead) return;
    TrainEvent e = makeEvent("checkpoint", epoch);
    e.final = final;
    e.aborted = aborted;
    fillSnapshot(e, *model, groups);
    emit(std::move(e));
  };

  const int64_t firstStep = globalStep;
  const int64_t lastStep = c.maxSteps > 0 ? std::min(totalSteps, firstStep + c.maxSteps) : totalSteps;
  // Under data parallelism every rank must run the same steps: the producer never stops on its own, the
  // ranks agree on a stop after each step.
  const std::function<bool()> neverStop = [] { return false; };
  BatchProducer producer(c, d, dev, firstStep, lastStep, stepsPerEpoch, group ? neverStop : stopRequested);

  applyThreads();
  const bool canKnn = lead && c.knnEvery > 0 && d.valImages.defined() && d.labels.defined() && d.valLabels.defined();
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
      TrainEvent k = makeEvent("knn", epochDone);
      k.top1 = kr.top1.at(0);
      k.top5 = kr.top5.at(0);
      emit(std::move(k));
    }
    model->train();
  };
  // The randomly initialised network's kNN accuracy: the baseline that training must beat.
  if (globalStep == 0) runKnn(0);
  TrainResult result;
  RunStats stats;
  bool aborted = false;
  model->train();
  try {
    StepProfiler profiler;
    while (true) {
      // The first step warms caches and oneDNN's primitives; the profile covers the steps after it.
      const bool profiling = c.profileSteps > 0 && stats.stepsDone >= 1 && stats.stepsDone <= c.profileSteps;
      if (profiling) profiler.begin();
      auto tw = Clock::now();
      Batch b;  // per step: the previous batch's tensors are freed before the next one is awaited
      bool got = false;
      {
        RECORD_USER_SCOPE(kPhaseWait);
        got = producer.next(b);
      }
      if (!got) {
        if (profiling) profiler.end(-1);
        break;
      }
      const double waitMs = msSince(tw);
      auto ts = Clock::now();
      const int64_t s = b.globalStep, epoch = s / stepsPerEpoch, inEpoch = s % stepsPerEpoch;
      groups.setLr(s, warmupSteps, double(totalSteps), c);
      methods::StepInfo info{s, totalSteps, epoch, c.epochs, b.labels};
      const StepOutcome out =
          trainStep(*model, *method, b, c, dev, *groups.opt, scaler, *collective, reducer.get(), syncBatchNorm.get(), trainable, info);
      if (!out.finiteGrads) ++skippedSteps;
      // With a grad scaler a non-finite loss is one more skipped step (as under Lightning); without one,
      // or when it persists, the run stops with the step named.
      consecutiveNonFinite = std::isfinite(out.loss) ? 0 : consecutiveNonFinite + 1;
      TSSL_CHECK(consecutiveNonFinite == 0 || (scaler.enabled() && consecutiveNonFinite < 50), "ERR_TORCH_VALUE", "the loss became ", out.loss,
                 " at step ", s, scaler.enabled() ? " for 50 steps in a row" : "", " (lower the learning rate?)");
      const double stepMs = msSince(ts);
      if (profiling) profiler.end(waitMs + stepMs);
      ++globalStep;
      stats.add(b, stepMs, waitMs, out.loss, inEpoch, c.batchSize);
      if (reducer) stats.sumComm += reducer->commMs(), stats.sumCommWait += reducer->exposedMs();
      result.lastLoss = out.loss;
      if (lead && c.logEvery > 0 && (stats.stepsDone % c.logEvery == 0 || inEpoch == stepsPerEpoch - 1)) {
        TrainEvent e = makeEvent("step", epoch);
        e.step = inEpoch;
        e.loss = out.loss;
        e.classifierLoss = out.classifierLoss;
        e.lr = groups.lr(0);
        for (size_t i = 0; i < out.ssl.termNames.size(); ++i) e.terms[out.ssl.termNames[i]] = out.ssl.terms[int64_t(i)].item<double>();
        e.imagesPerSec = stats.windowImagesPerSec();
        e.augmentMs = b.augmentMs;
        e.stepMs = stepMs;
        e.waitMs = waitMs;
        if (reducer) e.commMs = reducer->commMs(), e.commWaitMs = reducer->exposedMs();
        emit(std::move(e));
      }
      if (inEpoch == stepsPerEpoch - 1) {
        const int64_t done = epoch + 1;
        TrainEvent e = makeEvent("epoch", done);
        e.loss = stats.epochLoss(out.loss);
        if (lead) emit(std::move(e));
        if (c.knnEvery > 0 && (done % c.knnEvery == 0 || done == c.epochs)) runKnn(done);
        if (c.checkpointEvery > 0 && done % c.checkpointEvery == 0 && done < c.epochs) checkpoint(done, false, false);
      }
      // A stop asked for on any rank (Ctrl-C, abort) stops every rank after the same step.
      if (group ? group->any(stopRequested()) : stopRequested()) {
        aborted = true;
        break;
      }
    }
    result.profile = profiler.ops();
    result.profiledSteps = profiler.steps();
    result.profiledWallMs = profiler.wallMs();
  } catch (...) {
    producer.finish();
    throw;
  }
  producer.finish();
  if (auto e = producer.error()) std::rethrow_exception(e);
  if (!group && stopRequested()) aborted = true;
  const int64_t completedEpochs = globalStep / stepsPerEpoch;
  checkpoint(completedEpochs, true, aborted);
  if (group) group->any(false);  // the ranks leave together (rank 0 serves the store until all are done)
  result.epochs = completedEpochs;
  result.globalStep = globalStep;
  result.aborted = aborted;
  result.skippedSteps = skippedSteps;
  result.rank = group ? group->rank() : 0;
  result.worldSize = world;
  stats.finish(result, c.batchSize);
  return result;
}

}  // namespace tssl::train
