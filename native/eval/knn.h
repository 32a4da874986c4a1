// solo-learn's weighted k-nearest-neighbour classifier (solo/utils/knn.py, WeightedKNNClassifier;
// docs/features.md, Weighted kNN), evaluated for a grid of k and temperatures in one pass over the
// test×train similarities: the top-max(k) neighbours of each test row are found once, every (k, T) is
// scored from them.
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace tssl::eval {

enum class Distance {
  /// Rows L2-normalised; similarity = dot product; neighbour weight = exp(sim / T).
  Cosine,
  /// similarity = 1 / (‖x − t‖ + 1e-5), used as the weight itself (T plays no part).
  Euclidean,
};

struct KnnOptions {
  std::vector<int64_t> ks{20};
  std::vector<double> temperatures{0.07};
  Distance distance = Distance::Cosine;
  /// Test rows scored at once; 0 = as many as keep the chunk × train similarity block near 128 MiB.
  int64_t chunkSize = 0;
};

struct KnnResult {
  std::vector<int64_t> ks;
  std::vector<double> temperatures;
  /// Accuracy in percent, row-major [k][T].
  std::vector<double> top1, top5;
  int64_t numClasses = 0;
  int64_t trainCount = 0, testCount = 0;
};

/// Features (N, D) floating point; labels (N,) integer class indices. Train labels of −1 are left out of
/// the bank (solo-learn's masking). Classes are 0 … max label (equal to solo-learn's #unique(test labels)
/// whenever the test set holds every class).
KnnResult weightedKnn(const at::Tensor& trainFeatures, const at::Tensor& trainLabels, const at::Tensor& testFeatures, const at::Tensor& testLabels,
                      const KnnOptions& options);

}  // namespace tssl::eval
