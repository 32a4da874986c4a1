// The native self-supervised training loop: a producer thread augments the next batches while the
// training thread runs backbone + projector (+ solo-learn's online linear classifier on detached
// features), the fused loss, and LARS with the per-step warmup-cosine schedule. JS only configures it,
// receives events and can stop it; nothing crosses back into JS per step.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/augment.h"
#include "distributed/group.h"
#include "train/amp.h"
#include "models/projector.h"
#include "models/resnet.h"
#include "train/profile.h"

namespace tssl::train {

/// The complete run configuration. The binding fills every field from lib/train-wire.ts (toNativeConfig); the
/// defaults live only on the TS side (lib/defaults.ts, lib/train-config.ts, lib/methods/*.ts), so nothing here,
/// in ResNetOptions, ProjectorOptions or LARSOptions has one.
struct TrainConfig {
  std::string method;                         // a name in native/methods/registry.cc
  std::map<std::string, double> lossOptions;  // the method's options, all of them (methods/method.h)
  ResNetOptions backbone;
  ProjectorOptions projector;
  std::optional<ProjectorOptions> predictor;  // set exactly when the method's heads have a predictor (methods/model.h)
  bool lars{};                                // false: momentum SGD (solo-learn's SimSiam recipe)
  /// One pipeline per view; for TCR (EMP-SSL) `views` holds one pipeline applied numViews times.
  std::vector<data::ViewAugment> views;
  int64_t numViews{};
  bool concatViews{};  // forward all views in one pass (EMP-SSL) vs per view (solo-learn: BN per crop)
  int64_t batchSize{};
  bool shuffle{};  // a seeded permutation per epoch; false: dataset order (reproducible by other tools)
  int64_t epochs{};
  int64_t maxSteps{};      // 0: no limit (tests, benchmarks)
  int64_t profileSteps{};  // > 0: op-level profile of this many steps after the first (train/profile.h)
  double lr{}, classifierLr{}, weightDecay{}, eta{}, momentum{}, dampening{}, eps{};
  bool nesterov{}, clipLr{}, excludeBiasAndNorm{};
  double warmupEpochs{}, warmupStartLr{}, minLr{};
  int64_t numClasses{};  // > 0 with labels: online linear classifier
  uint64_t seed{};
  std::string device;
  bool channelsLast{};
  Precision precision = Precision::F32;
  std::optional<bool> gradScaler;  // unset: on for 16-mixed only
  GradScalerOptions scaler;
  int64_t checkpointEvery{};  // epochs; 0: only at the end / on abort
  int64_t logEvery{};         // steps
  int64_t knnEvery{};         // epochs; 0: off
  int64_t knnK{};
  double knnTemperature{};
  std::vector<double> evalMean, evalStd;
  /// Set: this run is one rank of a c10d data-parallel job (batchSize is per rank, as under DDP).
  std::optional<dist::DistOptions> dist;
};

struct TrainData {
  at::Tensor images;  // uint8 (N, H, W, 3) on CPU
  at::Tensor labels;  // int64 (N) or undefined
  at::Tensor valImages, valLabels;
};

/// Where to resume from: weights by solo-learn name (student, teacher, classifier), momentum buffers by parameter
/// name. Every module the method trains must be there (a missing teacher is an error naming it); the online
/// classifier alone may be absent (a run that adds labels).
struct ResumeState {
  std::vector<std::pair<std::string, at::Tensor>> stateDict;
  std::map<std::string, at::Tensor> momentum;
  int64_t globalStep = 0;
  /// config.backbone.init: a new run from a backbone alone (the heads start fresh; a teacher starts as a copy
  /// of the loaded student, as solo-learn's initialize_momentum_params does).
  bool backboneOnly = false;
  double ampScale = 0;  // 0: none saved (start from the configured initial scale)
  int64_t ampGrowthTracker = 0;
};

struct TrainEvent {
  std::string type;  // step | epoch | checkpoint | knn
  int64_t epoch = 0, step = 0, globalStep = 0, totalSteps = 0, stepsPerEpoch = 0;
  double loss = 0, classifierLoss = 0, lr = 0, imagesPerSec = 0, augmentMs = 0, stepMs = 0, waitMs = 0;
  std::map<std::string, double> terms;
  double top1 = 0, top5 = 0;
  double gradScale = 0;               // the loss scale (0 without a grad scaler)
  double commMs = 0, commWaitMs = 0;  // data-parallel: gradient all-reduce time, and the part backward did not hide
  int64_t skippedSteps = 0, ampGrowthTracker = 0;
  bool final = false, aborted = false;
  std::vector<std::pair<std::string, at::Tensor>> stateDict;  // checkpoint: parameters, then buffers
  std::vector<std::string> parameterNames;                    // checkpoint: every parameter (teacher's too), in order
  std::vector<std::pair<std::string, at::Tensor>> momentum;   // checkpoint: momentum buffers by name
  std::vector<std::pair<std::string, double>> groupLrs;       // checkpoint: lr per group
};

struct TrainResult {
  int64_t epochs = 0, globalStep = 0;
  bool aborted = false;
  int64_t skippedSteps = 0;  // optimizer steps the grad scaler skipped (inf/NaN gradients)
  double lastLoss = 0, imagesPerSec = 0, augmentMsPerStep = 0, stepMsPerStep = 0, waitMsPerStep = 0;
  double commMsPerStep = 0, commWaitMsPerStep = 0;  // data-parallel runs
  int64_t rank = 0, worldSize = 1;
  std::vector<OpProfile> profile;  // profileSteps > 0: summed over profiledSteps steps
  int64_t profiledSteps = 0;
  double profiledWallMs = 0;
};

TrainResult runTraining(const TrainConfig& config, const TrainData& data, const ResumeState* resume, const std::function<void(TrainEvent&&)>& emit,
                        const std::function<bool()>& stopRequested);

}  // namespace tssl::train
