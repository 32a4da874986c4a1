#include "models/conv.h"

#include <ATen/record_function.h>
#include <torch/autograd.h>
#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "common/env.h"
#include "common/error.h"
#include "common/torch_compat.h"
#include "models/winograd.h"

namespace tssl {

// With the input unfolded to (N·Ho·Wo, kh·kw·C) in channels_last order, dW (O, kh, kw, C) = gOᵀ (O, N·Ho·Wo) ·
// cols, which is the channels_last layout of the (O, C, kh, kw) weight.
at::Tensor convWeightGradByGemm(const at::Tensor& gO, const at::Tensor& x, int64_t kh, int64_t kw, at::IntArrayRef stride, at::IntArrayRef padding) {
  TSSL_CHECK(gO.dim() == 4 && x.dim() == 4 && stride.size() == 2 && padding.size() == 2 && kh > 0 && kw > 0 && stride[0] > 0 && stride[1] > 0 &&
                 padding[0] >= 0 && padding[1] >= 0,
             "ERR_TORCH_SHAPE", "convWeightGradByGemm: expected 4-d grad_output and input, two strides and two paddings");
  const int64_t O = gO.size(1), Ho = gO.size(2), Wo = gO.size(3), C = x.size(1);
  TSSL_CHECK(gO.size(0) == x.size(0) && Ho == (x.size(2) + 2 * padding[0] - kh) / stride[0] + 1 &&
                 Wo == (x.size(3) + 2 * padding[1] - kw) / stride[1] + 1 && gO.scalar_type() == x.scalar_type(),
             "ERR_TORCH_SHAPE", "convWeightGradByGemm: grad_output ", gO.sizes(), " does not match input ", x.sizes(), " with a ", kh, "×", kw,
             " kernel, stride ", stride, ", padding ", padding, " (or their dtypes differ)");
  at::Tensor xp = padding[0] || padding[1] ? at::constant_pad_nd(x, {padding[1], padding[1], padding[0], padding[0]}) : x;
  at::Tensor xn = xp.permute({0, 2, 3, 1});  // N, H, W, C
  std::vector<at::Tensor> taps;
  taps.reserve(size_t(kh * kw));
  for (int64_t i = 0; i < kh; ++i)
    for (int64_t j = 0; j < kw; ++j)
      taps.push_back(xn.slice(1, i, i + stride[0] * (Ho - 1) + 1, stride[0]).slice(2, j, j + stride[1] * (Wo - 1) + 1, stride[1]));
  at::Tensor cols = (taps.size() == 1 ? taps[0].contiguous() : at::cat(taps, 3)).reshape({-1, kh * kw * C});
  at::Tensor g2 = gO.permute({0, 2, 3, 1}).reshape({-1, O});
  return at::mm(g2.t(), cols).view({O, kh, kw, C}).permute({0, 3, 1, 2});
}

// Two zero columns of grad_output (outputs that contribute nothing) and two more of input on the right make the
// output map 2 wider; oneDNN then takes its fast path (bench/profile: 34 → 36 wide).
at::Tensor convWeightGradPaddedWidth(const at::Tensor& gO, const at::Tensor& x, const at::Tensor& w, at::IntArrayRef padding) {
  TSSL_CHECK(gO.dim() == 4 && x.dim() == 4 && w.dim() == 4 && padding.size() == 2 && padding[0] >= 0 && padding[1] >= 0, "ERR_TORCH_SHAPE",
             "convWeightGradPaddedWidth: expected 4-d grad_output, input and weight and two paddings");
  TSSL_CHECK(gO.size(0) == x.size(0) && gO.size(1) == w.size(0) && x.size(1) == w.size(1) &&
                 gO.size(2) == x.size(2) + 2 * padding[0] - w.size(2) + 1 && gO.size(3) == x.size(3) + 2 * padding[1] - w.size(3) + 1 &&
                 gO.scalar_type() == x.scalar_type(),
             "ERR_TORCH_SHAPE", "convWeightGradPaddedWidth: grad_output ", gO.sizes(), " does not match input ", x.sizes(), " and weight ", w.sizes(),
             " at stride 1, padding ", padding, " (or their dtypes differ)");
  const at::Tensor gp = at::constant_pad_nd(gO, {0, 2, 0, 0}).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor xp = at::constant_pad_nd(x, {padding[1], padding[1] + 2, padding[0], padding[0]}).contiguous(at::MemoryFormat::ChannelsLast);
  const std::vector<int64_t> one{1, 1}, zero{0, 0};
  return std::get<1>(at::convolution_backward(gp, xp, w, c10::nullopt, one, zero, one, false, zero, 1, {false, true, false}));
}

// Four images (n = 4m + 2a + b) in a 2×2 grid, one zero row and column after each: the zeros between two images are
// what padding 1 reads beside each, so a 3×3 stride-1 padding-1 convolution over the grid computes the four
// images' convolutions, and its outputs on the separators are dropped by unpackGrid.
namespace {
// Copies pixel vectors (C contiguous elements, channels_last) between the images and the grid, one memcpy each.
void copyGridPixels(const at::Tensor& images, const at::Tensor& grid, bool toGrid) {
  const int64_t N = images.size(0), H = images.size(2), W = images.size(3), Hg = grid.size(2), Wg = grid.size(3);
  const size_t bytes = size_t(images.size(1)) * images.element_size();
  char* ip = static_cast<char*>(images.data_ptr());
  char* gp = static_cast<char*>(grid.data_ptr());
  at::parallel_for(0, N * H, 16, [&](int64_t begin, int64_t end) {
    for (int64_t nh = begin; nh < end; ++nh) {
      const int64_t n = nh / H, h = nh % H, m = n / 4, a = (n % 4) / 2, b = n % 2;
      for (int64_t w = 0; w < W; ++w) {
        char* img = ip + ((n * H + h) * W + w) * bytes;
        char* cell = gp + ((m * Hg + a * (H + 1) + h) * Wg + b * (W + 1) + w) * bytes;
        if (toGrid) std::memcpy(cell, img, bytes);
        else std::memcpy(img, cell, bytes);
      }
    }
  });
}
}  // namespace

at::Tensor packGrid(const at::Tensor& xIn) {
  TSSL_CHECK(xIn.dim() == 4 && xIn.size(0) % 4 == 0, "ERR_TORCH_SHAPE", "packGrid: expected (N, C, H, W) with N a multiple of 4, got ", xIn.sizes());
  const at::Tensor x = xIn.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor grid = at::empty({N / 4, C, 2 * H + 1, 2 * W + 1}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  copyGridPixels(x, grid, true);
  // The separators: row H and column W of each grid.
  const int64_t Hg = 2 * H + 1, Wg = 2 * W + 1;
  const size_t px = size_t(C) * grid.element_size();
  char* gp = static_cast<char*>(grid.data_ptr());
  for (int64_t m = 0; m < N / 4; ++m) {
    std::memset(gp + (m * Hg + H) * Wg * px, 0, size_t(Wg) * px);
    for (int64_t r = 0; r < Hg; ++r) std::memset(gp + ((m * Hg + r) * Wg + W) * px, 0, px);
  }
  return grid;
}

at::Tensor unpackGrid(const at::Tensor& yIn, int64_t H, int64_t W) {
  TSSL_CHECK(yIn.dim() == 4 && yIn.size(2) == 2 * H + 1 && yIn.size(3) == 2 * W + 1, "ERR_TORCH_SHAPE", "unpackGrid: expected a (M, C, ", 2 * H + 1,
             ", ", 2 * W + 1, ") grid, got ", yIn.sizes());
  const at::Tensor y = yIn.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor images = at::empty({4 * y.size(0), y.size(1), H, W}, y.options().memory_format(at::MemoryFormat::ChannelsLast));
  copyGridPixels(images, y, false);
  return images;
}

namespace {
// Map positions per image at or below which Winograd runs on the 2×2 grid: ResNet's CIFAR layer3 and layer4 (9×9 and
// 5×5: Winograd fwd + bwd 1.4× and 1.6× faster on the grid, AMX Xeon). At 17×17 (1.2×) the grid's copies ate the
// gain in the step, and 34×34 gains nothing.
constexpr int64_t kSmallWinogradMap = 9 * 9;

// packGrid and unpackGrid as differentiable ops: each one's backward is the other (the separators' outputs are
// dropped, so their gradient is zero; packGrid writes zeros there).
struct PackGridFn : torch::autograd::Function<PackGridFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    ctx->saved_data["h"] = x.size(2);
    ctx->saved_data["w"] = x.size(3);
    return packGrid(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    return {unpackGrid(grads[0], ctx->saved_data["h"].toInt(), ctx->saved_data["w"].toInt())};
  }
};

struct UnpackGridFn : torch::autograd::Function<UnpackGridFn> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& grid, int64_t h, int64_t w) { return unpackGrid(grid, h, w); }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*, torch::autograd::variable_list grads) {
    return {packGrid(grads[0]), at::Tensor(), at::Tensor()};
  }
};
}  // namespace

bool gridConvEnabled() {
  static const bool on = !switchedOff("TORCH_SSL_GRID_CONV");
  return on;
}

// Measured with oneDNN 2.6 (LibTorch 1.13) only: LibTorch 2.x builds take the layer's own forward.
#if TORCH_VERSION_MAJOR < 2
namespace {

constexpr int64_t kSmallMap = 36;  // output positions per image at or below which the GEMM path is taken

bool cpuHasAmx() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) return line.find(" amx_bf16") != std::string::npos;
  return false;
}

// Output widths at which oneDNN 2.6's bf16 backward-weights kernel is slow (bench/profile, AMX: 34 wide runs
// 330 GFLOP/s, 32 and 36 wide 960-1190): the weight gradient is computed 2 wider (convWeightGradPaddedWidth).
bool slowBf16WeightGradWidth(int64_t wo) { return wo >= 30 && wo % 4 == 2; }

// A bf16 convolution whose weight gradient is computed another way: as one GEMM (small maps) or 2 columns wider;
// and, for 3×3 stride-1 small maps, whose forward and input gradient run on four images at a time in a 2×2 grid
// (packGrid), where oneDNN 2.6 is ~1.8× faster than at 5×5 (bench/profile, AMX).
struct SmallMapConv : torch::autograd::Function<SmallMapConv> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, std::vector<int64_t> stride,
                            std::vector<int64_t> padding, bool paddedWidth, bool grid) {
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["paddedWidth"] = paddedWidth;
    ctx->saved_data["grid"] = grid;
    if (!grid) {
      ctx->save_for_backward({x, w});
      return at::conv2d(x, w, {}, stride, padding);
    }
    const at::Tensor xg = packGrid(x);
    ctx->save_for_backward({x, w, xg});
    return unpackGrid(at::conv2d(xg, w, {}, stride, padding), x.size(2), x.size(3));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];
    const std::vector<int64_t> stride = ctx->saved_data["stride"].toIntVector();
    const std::vector<int64_t> padding = ctx->saved_data["padding"].toIntVector();
    const at::Tensor gO = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor gx, gw;
    if (ctx->needs_input_grad(0)) {
      const std::vector<int64_t> dilation{1, 1}, outputPadding{0, 0};
      if (ctx->saved_data["grid"].toBool()) {
        const at::Tensor gg = std::get<0>(at::convolution_backward(packGrid(gO), saved[2], w, c10::nullopt, stride, padding, dilation, false,
                                                                   outputPadding, 1, {true, false, false}));
        gx = unpackGrid(gg, x.size(2), x.size(3));
      } else {
        gx = std::get<0>(at::convolution_backward(gO, x, w, c10::nullopt, stride, padding, dilation, false, outputPadding, 1, {true, false, false}));
      }
    }
    if (ctx->needs_input_grad(1)) {
      if (ctx->saved_data["paddedWidth"].toBool()) {
        gw = convWeightGradPaddedWidth(gO, x, w, padding);
      } else {
        RECORD_USER_SCOPE("tssl::conv_weight_grad");  // a phase of train/profile.h
        gw = convWeightGradByGemm(gO, x, w.size(2), w.size(3), stride, padding);
      }
    }
    return {gx, gw, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool smallMapConvEnabled() {
  static const bool on = [] {
    if (switchedOff("TORCH_SSL_SMALL_MAP_CONV")) return false;
    return cpuHasAmx() && !std::getenv("TORCH_SSL_ASSUME_NO_BF16");
  }();
  return on;
}

static at::Tensor convolveLibTorch(torch::nn::Conv2dImpl& conv, const at::Tensor& x) {
  const auto& o = conv.options;
  const bool candidate = conv.is_training() && at::GradMode::is_enabled() && conv.weight.requires_grad() && x.device().is_cpu() && x.dim() == 4 &&
                         !conv.bias.defined() && o.groups() == 1 && (*o.dilation())[0] == 1 && (*o.dilation())[1] == 1 &&
                         c10::holds_alternative<torch::ExpandingArray<2>>(o.padding()) && compat::autocastEnabled(c10::DeviceType::CPU) &&
                         compat::autocastDtype(c10::DeviceType::CPU) == at::kBFloat16 && smallMapConvEnabled();
  if (!candidate) return conv.forward(x);
  const auto k = *o.kernel_size(), s = *o.stride(), p = *c10::get<torch::ExpandingArray<2>>(o.padding());
  const int64_t ho = (x.size(2) + 2 * p[0] - k[0]) / s[0] + 1, wo = (x.size(3) + 2 * p[1] - k[1]) / s[1] + 1;
  const bool paddedWidth = ho * wo > kSmallMap;
  if (paddedWidth && !(s[0] == 1 && s[1] == 1 && slowBf16WeightGradWidth(wo))) return conv.forward(x);
  // As autocast's conv2d: both operands in bf16 (the weight's cast cached for the step, as torch.autocast does).
  at::Tensor xb = at::autocast::cached_cast(at::kBFloat16, x, c10::DeviceType::CPU);
  at::Tensor wb = at::autocast::cached_cast(at::kBFloat16, conv.weight, c10::DeviceType::CPU);
  const bool grid =
      !paddedWidth && gridConvEnabled() && k[0] == 3 && k[1] == 3 && s[0] == 1 && s[1] == 1 && p[0] == 1 && p[1] == 1 && x.size(0) % 4 == 0;
  return SmallMapConv::apply(xb, wb, std::vector<int64_t>{s[0], s[1]}, std::vector<int64_t>{p[0], p[1]}, paddedWidth, grid);
}

#else

bool smallMapConvEnabled() { return false; }
static at::Tensor convolveLibTorch(torch::nn::Conv2dImpl& conv, const at::Tensor& x) { return conv.forward(x); }

#endif

// float32 3×3 stride-1 convolutions (ResNet's, all but the stem and the downsampling ones) as oneDNN's Winograd
// (models/winograd.h) where this build and CPU have it; not under autocast, whose bf16 convolutions stay LibTorch's.
at::Tensor convolve(torch::nn::Conv2dImpl& conv, const at::Tensor& x) {
  const auto& o = conv.options;
  const torch::ExpandingArray<2>* pad = compat::convPaddingNumbers(o);
  // The conv's own options here; winogradConv3x3 checks the operands (device, dtype, shapes) and the CPU.
  const bool winograd = winogradEnabled() && !conv.bias.defined() && o.groups() == 1 && (*o.kernel_size())[0] == 3 && (*o.kernel_size())[1] == 3 &&
                        (*o.stride())[0] == 1 && (*o.stride())[1] == 1 && (*o.dilation())[0] == 1 && (*o.dilation())[1] == 1 && pad &&
                        (**pad)[0] == 1 && (**pad)[1] == 1 && compat::convPadsWithZeros(o) && !compat::autocastEnabled(c10::DeviceType::CPU);
  if (winograd && x.dim() == 4 && x.size(0) * x.size(2) * x.size(3) >= kMinWinogradPositions) {
    // Small maps waste Winograd's 4×4 output tiles (at 5×5, 8×8 are computed for 25); four images in a 2×2 grid
    // waste less (11×11: 12×12 for 121).
    if (x.size(0) % 4 == 0 && x.size(2) * x.size(3) <= kSmallWinogradMap && gridConvEnabled()) {
      at::Tensor y = winogradConv3x3(PackGridFn::apply(x), conv.weight);
      if (y.defined()) return UnpackGridFn::apply(y, x.size(2), x.size(3));
    }
    at::Tensor y = winogradConv3x3(x, conv.weight);
    if (y.defined()) return y;
  }
  return convolveLibTorch(conv, x);
}

}  // namespace tssl
