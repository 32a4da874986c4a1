#include "eval/knn.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "eval/check.h"

namespace tssl::eval {

namespace {

constexpr double kEuclideanEps = 1e-5;                // solo-learn's `epsilon`
constexpr int64_t kChunkElements = int64_t{1} << 25;  // 32 Mi similarities (128 MiB in float32) per chunk

}  // namespace

KnnResult weightedKnn(const at::Tensor& trainFeaturesIn, const at::Tensor& trainLabelsIn, const at::Tensor& testFeaturesIn,
                      const at::Tensor& testLabelsIn, const KnnOptions& options) {
  checkFeatures(trainFeaturesIn, "trainFeatures");
  checkFeatures(testFeaturesIn, "testFeatures");
  TSSL_CHECK(trainFeaturesIn.size(1) == testFeaturesIn.size(1), "ERR_TORCH_SHAPE", "trainFeatures have ", trainFeaturesIn.size(1),
             " dimensions but testFeatures have ", testFeaturesIn.size(1));
  at::Tensor trainLabels = checkLabels(trainLabelsIn, trainFeaturesIn, "trainLabels", -1);
  at::Tensor testLabels = checkLabels(testLabelsIn, testFeaturesIn, "testLabels", 0);
  TSSL_CHECK(!options.ks.empty() && !options.temperatures.empty(), "ERR_INVALID_ARG", "kNN needs at least one k and one temperature");
  for (double t : options.temperatures) TSSL_CHECK(std::isfinite(t) && t > 0, "ERR_INVALID_ARG", "temperature must be a finite number > 0, got ", t);

  const auto dtype = at::promote_types(trainFeaturesIn.scalar_type(), testFeaturesIn.scalar_type());
  at::Tensor train = trainFeaturesIn.to(dtype), test = testFeaturesIn.to(testFeaturesIn.device(), dtype);
  train = train.to(test.device());
  trainLabels = trainLabels.to(test.device());
  testLabels = testLabels.to(test.device());
  // solo-learn drops train targets of −1 from the bank.
  at::Tensor keep = trainLabels.ge(0);
  if (!keep.all().item<bool>()) {
    train = train.index({keep});
    trainLabels = trainLabels.index({keep});
  }
  const int64_t nTrain = train.size(0), nTest = test.size(0);
  TSSL_CHECK(nTrain > 0, "ERR_TORCH_SHAPE", "the train bank is empty (every train label is -1)");
  int64_t maxK = 0;
  for (int64_t k : options.ks) {
    TSSL_CHECK(k >= 1, "ERR_INVALID_ARG", "k must be a positive integer, got ", k);
    TSSL_CHECK(k <= nTrain, "ERR_INVALID_ARG", "k = ", k, " is larger than the train bank (", nTrain, " features)");
    maxK = std::max(maxK, k);
  }
  const int64_t numClasses = std::max(trainLabels.max().item<int64_t>(), testLabels.max().item<int64_t>()) + 1;

  const bool cosine = options.distance == Distance::Cosine;
  at::Tensor trainSqNorm;
  if (cosine) {
    // F.normalize(dim=1): x / max(‖x‖, 1e-12).
    train = train / train.norm(2, 1, true).clamp_min(1e-12);
    test = test / test.norm(2, 1, true).clamp_min(1e-12);
  } else {
    trainSqNorm = train.pow(2).sum(1);
  }
  const int64_t chunk = options.chunkSize > 0 ? std::min(options.chunkSize, nTest) : std::clamp<int64_t>(kChunkElements / nTrain, 1, nTest);
  const size_t nk = options.ks.size(), nt = options.temperatures.size();
  std::vector<int64_t> correct1(nk * nt, 0), correct5(nk * nt, 0);
  at::Tensor trainT = train.t();

  for (int64_t start = 0; start < nTest; start += chunk) {
    const int64_t rows = std::min(chunk, nTest - start);
    at::Tensor x = test.narrow(0, start, rows);
    at::Tensor targets = testLabels.narrow(0, start, rows).unsqueeze(1);
    at::Tensor values, indices;
    if (cosine) {
      std::tie(values, indices) = at::mm(x, trainT).topk(maxK, 1, true, true);
    } else {
      // Nearest = largest x·t − ½‖t‖² (‖x‖² is constant per row), so no sqrt runs over the whole block;
      // d² = ‖x‖² − 2·score, as torch.cdist's matrix-product path computes it.
      at::Tensor score = at::addmm(trainSqNorm.unsqueeze(0), x, trainT, /*beta=*/-0.5, /*alpha=*/1.0);
      at::Tensor best;
      std::tie(best, indices) = score.topk(maxK, 1, true, true);
      at::Tensor dist = (x.pow(2).sum(1, true) - 2 * best).clamp_min_(0).sqrt_();
      values = dist.add_(kEuclideanEps).reciprocal_();
    }
    at::Tensor neighbourLabels = trainLabels.index_select(0, indices.reshape(-1)).view({rows, maxK});
    for (size_t ki = 0; ki < nk; ++ki) {
      const int64_t k = options.ks[ki];
      at::Tensor sims = values.narrow(1, 0, k), labels = neighbourLabels.narrow(1, 0, k);
      const int64_t top5Width = std::min<int64_t>({5, k, numClasses});
      for (size_t ti = 0; ti < nt; ++ti) {
        if (!cosine && ti > 0) {  // the temperature plays no part in euclidean mode
          correct1[ki * nt + ti] = correct1[ki * nt];
          correct5[ki * nt + ti] = correct5[ki * nt];
          continue;
        }
        // exp((s − s_max) / T): the same class ranking as solo-learn's exp(s / T) (every weight of a row is
        // scaled by exp(−s_max / T)), without its float32 overflow to inf for small T (s / T > 88.7).
        at::Tensor weights = cosine ? sims.sub(sims.narrow(1, 0, 1)).div_(options.temperatures[ti]).exp_() : sims;
        at::Tensor scores = at::zeros({rows, numClasses}, weights.options()).scatter_add_(1, labels, weights);
        at::Tensor predictions = std::get<1>(scores.sort(1, true));
        at::Tensor hits = predictions.narrow(1, 0, top5Width).eq(targets);
        correct1[ki * nt + ti] += hits.narrow(1, 0, 1).sum().item<int64_t>();
        correct5[ki * nt + ti] += hits.sum().item<int64_t>();
      }
    }
  }

  KnnResult r;
  r.ks = options.ks;
  r.temperatures = options.temperatures;
  r.numClasses = numClasses;
  r.trainCount = nTrain;
  r.testCount = nTest;
  for (size_t i = 0; i < nk * nt; ++i) {
    r.top1.push_back(100.0 * static_cast<double>(correct1[i]) / static_cast<double>(nTest));
    r.top5.push_back(100.0 * static_cast<double>(correct5[i]) / static_cast<double>(nTest));
  }
  return r;
}

}  // namespace tssl::eval
