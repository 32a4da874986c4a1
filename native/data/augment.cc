#include "data/augment.h"

#include <cmath>

#include "common/error.h"

namespace tssl::data {
namespace {

double uniform(std::mt19937_64& rng, double lo, double hi) { return lo + (hi - lo) * std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
int64_t randint(std::mt19937_64& rng, int64_t lo, int64_t hiExclusive) { return std::uniform_int_distribution<int64_t>(lo, hiExclusive - 1)(rng); }
bool coin(std::mt19937_64& rng, double p) { return p > 0 && uniform(rng, 0, 1) < p; }

// (N,1,1,1) view of a per-image factor vector.
at::Tensor perImage(const at::Tensor& f, const at::Tensor& like) { return f.to(like.device(), like.scalar_type()).view({-1, 1, 1, 1}); }

// torchvision _blend: clamp(ratio·img1 + (1 − ratio)·img2, 0, 1) for float images.
at::Tensor blend(const at::Tensor& a, const at::Tensor& b, const at::Tensor& ratio) { return (a * ratio + b * (1.0 - ratio)).clamp(0.0, 1.0); }

at::Tensor gray1(const at::Tensor& x) { return (x.select(1, 0) * 0.2989 + x.select(1, 1) * 0.587 + x.select(1, 2) * 0.114).unsqueeze(1); }

// torchvision _rgb2hsv / _hsv2rgb for float tensors.
at::Tensor rgb2hsv(const at::Tensor& img) {
  at::Tensor r = img.select(1, 0), g = img.select(1, 1), b = img.select(1, 2);
  at::Tensor maxc = std::get<0>(img.max(1)), minc = std::get<0>(img.min(1));
  at::Tensor eqc = maxc == minc;
  at::Tensor cr = maxc - minc;
  at::Tensor ones = at::ones_like(maxc);
  at::Tensor s = cr / at::where(eqc, ones, maxc);
  at::Tensor crDivisor = at::where(eqc, ones, cr);
  at::Tensor rc = (maxc - r) / crDivisor, gc = (maxc - g) / crDivisor, bc = (maxc - b) / crDivisor;
  at::Tensor hr = (maxc == r) * (bc - gc);
  at::Tensor hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc);
  at::Tensor hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc);
  at::Tensor h = hr + hg + hb;
  h = at::fmod(h / 6.0 + 1.0, 1.0);
  return at::stack({h, s, maxc}, 1);
}

at::Tensor hsv2rgb(const at::Tensor& img) {
  at::Tensor h = img.select(1, 0), s = img.select(1, 1), v = img.select(1, 2);
  at::Tensor i = at::floor(h * 6.0);
  at::Tensor f = h * 6.0 - i;
  i = i.to(at::kInt);
  at::Tensor p = (v * (1.0 - s)).clamp(0.0, 1.0);
  at::Tensor q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
  at::Tensor t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
  i = i.remainder(6);
  at::Tensor mask = i.unsqueeze(1) == at::arange(6, i.options()).view({-1, 1, 1});  // (N, 6, H, W)
  at::Tensor a1 = at::stack({v, q, p, p, t, v}, 1);
  at::Tensor a2 = at::stack({t, v, v, q, p, p}, 1);
  at::Tensor a3 = at::stack({p, p, t, v, v, q}, 1);
  at::Tensor a4 = at::stack({a1, a2, a3}, 1);  // (N, 3, 6, H, W)
  return (mask.unsqueeze(1).to(img.scalar_type()) * a4).sum(2);
}

// Applies op to the images selected by `mask` (bool, host vector), leaving the others untouched.
template <typename Op>
at::Tensor applyWhere(const at::Tensor& x, const std::vector<int64_t>& idx, Op op) {
  if (idx.empty()) return x;
  at::Tensor index = at::tensor(idx, at::TensorOptions().dtype(at::kLong)).to(x.device());
  at::Tensor out = x.clone();
  out.index_copy_(0, index, op(x.index_select(0, index), index));
  return out;
}

}  // namespace

CropBox sampleCrop(std::mt19937_64& rng, int64_t height, int64_t width, const ViewAugment& a) {
  const double area = double(height) * double(width);
  const double logLo = std::log(a.ratioMin), logHi = std::log(a.ratioMax);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform(rng, a.scaleMin, a.scaleMax);
    const double aspect = std::exp(uniform(rng, logLo, logHi));
    const int64_t w = std::llround(std::sqrt(target * aspect));
    const int64_t h = std::llround(std::sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      return {randint(rng, 0, height - h + 1), randint(rng, 0, width - w + 1), h, w};
    }
  }
  const double inRatio = double(width) / double(height);
  int64_t w, h;
  if (inRatio < a.ratioMin) {
    w = width;
    h = std::llround(double(w) / a.ratioMin);
  } else if (inRatio > a.ratioMax) {
    h = height;
    w = std::llround(double(h) * a.ratioMax);
  } else {
    w = width;
    h = height;
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

at::Tensor resizedCrop(const at::Tensor& x, const std::vector<CropBox>& boxes, int64_t size, bool bicubic) {
  TSSL_CHECK(static_cast<int64_t>(boxes.size()) == x.size(0), "ERR_TORCH_SHAPE", "resizedCrop: one box per image");
  std::vector<at::Tensor> out;
  out.reserve(boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    const CropBox& b = boxes[i];
    at::Tensor crop = x.narrow(0, int64_t(i), 1).narrow(2, b.top, b.height).narrow(3, b.left, b.width);
    out.push_back(bicubic ? at::upsample_bicubic2d(crop, {size, size}, false) : at::upsample_bilinear2d(crop, {size, size}, false));
  }
  at::Tensor r = at::cat(out, 0);
  return bicubic ? r.clamp(0.0, 1.0) : r;  // bicubic overshoots; PIL / uint8 pipelines saturate
}

at::Tensor adjustBrightness(const at::Tensor& x, const at::Tensor& f) { return blend(x, at::zeros_like(x), perImage(f, x)); }
at::Tensor adjustContrast(const at::Tensor& x, const at::Tensor& f) {
  at::Tensor mean = gray1(x).mean({1, 2, 3}, true);
  return blend(x, mean, perImage(f, x));
}
at::Tensor adjustSaturation(const at::Tensor& x, const at::Tensor& f) { return blend(x, gray1(x), perImage(f, x)); }
at::Tensor adjustHue(const at::Tensor& x, const at::Tensor& f) {
  at::Tensor hsv = rgb2hsv(x);
  at::Tensor h = at::fmod(hsv.select(1, 0) + f.to(x.device(), x.scalar_type()).view({-1, 1, 1}), 1.0);
  // torchvision: (h + hue_factor) % 1.0 with Python's modulo (non-negative result)
  h = at::where(h < 0, h + 1.0, h);
  return hsv2rgb(at::stack({h, hsv.select(1, 1), hsv.select(1, 2)}, 1));
}
at::Tensor grayscale(const at::Tensor& x) { return gray1(x).expand_as(x).contiguous(); }

at::Tensor gaussianBlur(const at::Tensor& x, int64_t k, const at::Tensor& sigma) {
  TSSL_CHECK(k > 0 && k % 2 == 1, "ERR_INVALID_ARG", "gaussianBlur: kernel size must be odd and positive, got ", k);
  const int64_t n = x.size(0), c = x.size(1);
  at::Tensor grid = at::linspace(-(k - 1) * 0.5, (k - 1) * 0.5, k, x.options());  // (k)
  at::Tensor s = sigma.to(x.device(), x.scalar_type()).view({-1, 1});
  at::Tensor pdf = at::exp(-0.5 * (grid.view({1, -1}) / s).pow(2));
  at::Tensor k1 = pdf / pdf.sum(1, true);  // (N, k)
  at::Tensor kx = k1.repeat_interleave(c, 0).view({n * c, 1, 1, k});
  at::Tensor ky = k1.repeat_interleave(c, 0).view({n * c, 1, k, 1});
  const int64_t pad = k / 2;
  at::Tensor y = at::reflection_pad2d(x.reshape({1, n * c, x.size(2), x.size(3)}), {pad, pad, pad, pad});
  y = at::conv2d(y, kx, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, n * c);
  y = at::conv2d(y, ky, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, n * c);
  return y.view_as(x);
}

at::Tensor solarize(const at::Tensor& x, double threshold) { return at::where(x >= threshold, 1.0 - x, x); }
at::Tensor hflip(const at::Tensor& x) { return x.flip({3}); }

at::Tensor normalize(const at::Tensor& x, const std::vector<double>& mean, const std::vector<double>& std) {
  TSSL_CHECK(mean.size() == 3 && std.size() == 3, "ERR_INVALID_ARG", "normalize: mean and std need 3 values");
  at::Tensor m = at::tensor(mean, x.options().dtype(at::kDouble)).to(x.scalar_type()).view({1, 3, 1, 1});
  at::Tensor s = at::tensor(std, x.options().dtype(at::kDouble)).to(x.scalar_type()).view({1, 3, 1, 1});
  return (x - m) / s;
}

at::Tensor toFloatImages(const at::Tensor& x) {
  if (x.scalar_type() == at::kByte) {
    TSSL_CHECK(x.dim() == 4 && x.size(3) == 3, "ERR_TORCH_SHAPE", "uint8 images must be (N, H, W, 3), got ", shapeString(x.sizes().vec()));
    return x.permute({0, 3, 1, 2}).to(at::kFloat).div_(255.0).contiguous();
  }
  TSSL_CHECK(x.dim() == 4 && x.size(1) == 3, "ERR_TORCH_SHAPE", "float images must be (N, 3, H, W), got ", shapeString(x.sizes().vec()));
  return x.to(at::kFloat);
}

at::Tensor augmentBatch(const at::Tensor& input, const ViewAugment& a, std::mt19937_64& rng) {
  at::Tensor x = toFloatImages(input);
  const int64_t n = x.size(0), H = x.size(2), W = x.size(3);
  std::vector<CropBox> boxes;
  boxes.reserve(n);
  for (int64_t i = 0; i < n; ++i) boxes.push_back(sampleCrop(rng, H, W, a));
  x = resizedCrop(x, boxes, a.size, a.bicubic);

  // ColorJitter with probability jitterP: four factors, applied in a per-image random order.
  std::vector<int64_t> jittered;
  std::vector<std::array<int, 4>> order(n);
  std::vector<double> fb(n, 1), fc(n, 1), fs(n, 1), fh(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (!coin(rng, a.jitterP)) continue;
    jittered.push_back(i);
    std::array<int, 4> perm{0, 1, 2, 3};
    std::shuffle(perm.begin(), perm.end(), rng);
    order[i] = perm;
    if (a.brightness > 0) fb[i] = uniform(rng, std::max(0.0, 1 - a.brightness), 1 + a.brightness);
    if (a.contrast > 0) fc[i] = uniform(rng, std::max(0.0, 1 - a.contrast), 1 + a.contrast);
    if (a.saturation > 0) fs[i] = uniform(rng, std::max(0.0, 1 - a.saturation), 1 + a.saturation);
    if (a.hue > 0) fh[i] = uniform(rng, -a.hue, a.hue);
  }
  if (!jittered.empty()) {
    const at::Tensor tb = at::tensor(fb), tc = at::tensor(fc), ts = at::tensor(fs), th = at::tensor(fh);
    for (int pos = 0; pos < 4; ++pos) {
      for (int op = 0; op < 4; ++op) {
        std::vector<int64_t> idx;
        for (int64_t i : jittered)
          if (order[i][pos] == op) idx.push_back(i);
        if (op == 0 && a.brightness > 0)
          x = applyWhere(x, idx, [&](const at::Tensor& s, const at::Tensor& ix) { return adjustBrightness(s, tb.index_select(0, ix.cpu())); });
        if (op == 1 && a.contrast > 0)
          x = applyWhere(x, idx, [&](const at::Tensor& s, const at::Tensor& ix) { return adjustContrast(s, tc.index_select(0, ix.cpu())); });
        if (op == 2 && a.saturation > 0)
          x = applyWhere(x, idx, [&](const at::Tensor& s, const at::Tensor& ix) { return adjustSaturation(s, ts.index_select(0, ix.cpu())); });
        if (op == 3 && a.hue > 0)
          x = applyWhere(x, idx, [&](const at::Tensor& s, const at::Tensor& ix) { return adjustHue(s, th.index_select(0, ix.cpu())); });
      }
    }
  }
  std::vector<int64_t> gray, blur, solar, flip;
  std::vector<double> sigmas;
  for (int64_t i = 0; i < n; ++i)
    if (coin(rng, a.grayP)) gray.push_back(i);
  for (int64_t i = 0; i < n; ++i)
    if (coin(rng, a.blurP)) {
      blur.push_back(i);
      sigmas.push_back(uniform(rng, a.sigmaMin, a.sigmaMax));
    }
  for (int64_t i = 0; i < n; ++i)
    if (coin(rng, a.solarizeP)) solar.push_back(i);
  for (int64_t i = 0; i < n; ++i)
    if (coin(rng, a.flipP)) flip.push_back(i);
  x = applyWhere(x, gray, [](const at::Tensor& s, const at::Tensor&) { return grayscale(s); });
  if (!blur.empty()) {
    int64_t k = a.blurKernel;
    if (k <= 0) k = std::max<int64_t>(3, (a.size / 10) | 1);
    const at::Tensor ts = at::tensor(sigmas);
    x = applyWhere(x, blur, [&](const at::Tensor& s, const at::Tensor&) { return gaussianBlur(s, k, ts); });
  }
  // PIL's Solarize(128) on uint8 = values ≥ 128 inverted; in [0,1] the threshold is 128/255.
  x = applyWhere(x, solar, [](const at::Tensor& s, const at::Tensor&) { return solarize(s, 128.0 / 255.0); });
  x = applyWhere(x, flip, [](const at::Tensor& s, const at::Tensor&) { return hflip(s); });
  return normalize(x, a.mean, a.std);
}

}  // namespace tssl::data
