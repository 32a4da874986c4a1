#include "models/winograd.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "common/env.h"
#include "kernels/winograd_f43.h"

#if defined(TSSL_WITH_WINOGRAD)
#include <oneapi/dnnl/dnnl.hpp>
#endif

#if defined(TSSL_WITH_WINOGRAD)
namespace {

using dnnl::memory;
using Args = std::unordered_map<int, memory>;

dnnl::engine& cpuEngine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

at::Tensor bytes(const memory::desc& d) { return at::empty({static_cast<int64_t>(d.get_size())}, at::TensorOptions().dtype(at::kByte)); }
memory wrap(const memory::desc& d, const at::Tensor& t) { return memory(d, cpuEngine(), t.data_ptr()); }

// Every primitive runs with a scratchpad torch-ssl owns (scratchpad_mode::user): one buffer per thread, grown to the
// largest any primitive asked for and kept, as oneDNN's own global scratchpad is. Winograd's are large (~100 MB for
// ResNet-18's layer3 at batch 128); allocating them per call costs page faults on every call.
dnnl::primitive_attr userScratchpad() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

template <typename Pd>
void run(const dnnl::primitive& p, const Pd& pd, Args args) {
  thread_local at::Tensor scratch;
  const memory::desc sd = pd.scratchpad_desc();
  if (sd.get_size() > 0) {
    if (!scratch.defined() || static_cast<size_t>(scratch.numel()) < sd.get_size()) {
      scratch = at::Tensor();  // the old buffer first: never both at once
      scratch = bytes(sd);
    }
    args.insert({DNNL_ARG_SCRATCHPAD, wrap(sd, scratch)});
  }
  dnnl::stream s(cpuEngine());
  p.execute(s, args);
  s.wait();
}

struct Reorder {
  memory::desc from, to;
  dnnl::reorder::primitive_desc pd;
  dnnl::reorder prim;
  Reorder(const memory::desc& f, const memory::desc& t) : from(f), to(t), pd(cpuEngine(), f, cpuEngine(), t, userScratchpad()), prim(pd) {}
  void operator()(const at::Tensor& src, const at::Tensor& dst) const {
    run(prim, pd, {{DNNL_ARG_FROM, wrap(from, src)}, {DNNL_ARG_TO, wrap(to, dst)}});
  }
  /// src reordered into a new buffer of `to`'s layout.
  at::Tensor operator()(const at::Tensor& src) const {
    at::Tensor dst = bytes(to);
    (*this)(src, dst);
    return dst;
  }
};

// One shape (N, C, H, W) × (O, C, 3, 3) with its operands' layouts: the three Winograd primitives, and the reorders
// between LibTorch's dense layouts (NCHW or channels_last) and the blocked ones oneDNN's Winograd takes.
struct Plan {
  bool xLast = false, wLast = false;
  dnnl::convolution_forward::primitive_desc fwdPd;
  dnnl::convolution_backward_data::primitive_desc dataPd;
  dnnl::convolution_backward_weights::primitive_desc weightsPd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data data;
  dnnl::convolution_backward_weights weights;
  std::optional<Reorder> xIn, wIn, yOut, gIn, gInForWeights, wInForData, xInForWeights, gxOut, gwOut;
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;  // N, C, H, W, O, x and w channels_last

memory::desc plainDesc(const memory::dims& d, bool channelsLast) {
  const int64_t a = d[1], h = d[2], w = d[3];
  const memory::dims strides = channelsLast ? memory::dims{h * w * a, 1, w * a, a} : memory::dims{a * h * w, h * w, w, 1};
  return memory::desc(d, memory::data_type::f32, strides);
}

std::unique_ptr<Plan> build(const Key& k) {
  const auto [n, c, h, w, o, xLast, wLast] = k;
  const memory::dims src{n, c, h, w}, wei{o, c, 3, 3}, dst{n, o, h, w}, stride{1, 1}, pad{1, 1};
  auto any = [](const memory::dims& d) { return memory::desc(d, memory::data_type::f32, memory::format_tag::any); };
  const auto alg = dnnl::algorithm::convolution_winograd;
  auto p = std::make_unique<Plan>();
  p->xLast = xLast;
  p->wLast = wLast;
  p->fwdPd = dnnl::convolution_forward::primitive_desc(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, any(src), any(wei), any(dst), stride, pad, pad), userScratchpad(),
      cpuEngine());
  p->dataPd = dnnl::convolution_backward_data::primitive_desc(
      dnnl::convolution_backward_data::desc(alg, any(src), any(wei), any(dst), stride, pad, pad), userScratchpad(), cpuEngine(), p->fwdPd);
  p->weightsPd = dnnl::convolution_backward_weights::primitive_desc(
      dnnl::convolution_backward_weights::desc(alg, any(src), any(wei), any(dst), stride, pad, pad), userScratchpad(), cpuEngine(), p->fwdPd);
  p->fwd = dnnl::convolution_forward(p->fwdPd);
  p->data = dnnl::convolution_backward_data(p->dataPd);
  p->weights = dnnl::convolution_backward_weights(p->weightsPd);
  const memory::desc xPlain = plainDesc(src, xLast), wPlain = plainDesc(wei, wLast), yPlain = plainDesc(dst, xLast);
  p->xIn.emplace(xPlain, p->fwdPd.src_desc());
  p->wIn.emplace(wPlain, p->fwdPd.weights_desc());
  p->yOut.emplace(p->fwdPd.dst_desc(), yPlain);
  p->gIn.emplace(yPlain, p->dataPd.diff_dst_desc());
  if (p->weightsPd.diff_dst_desc() != p->dataPd.diff_dst_desc()) p->gInForWeights.emplace(yPlain, p->weightsPd.diff_dst_desc());
  if (p->dataPd.weights_desc() != p->fwdPd.weights_desc()) p->wInForData.emplace(wPlain, p->dataPd.weights_desc());
  if (p->weightsPd.src_desc() != p->fwdPd.src_desc()) p->xInForWeights.emplace(xPlain, p->weightsPd.src_desc());
  p->gxOut.emplace(p->dataPd.diff_src_desc(), xPlain);
  p->gwOut.emplace(p->weightsPd.diff_weights_desc(), wPlain);
  return p;
}

// Plans live for the process (one per shape and layout a model uses); a shape oneDNN has no Winograd kernel for is
// remembered as nullptr and runs LibTorch's convolution.
const Plan* planFor(const Key& k) {
  static std::mutex mu;
  static std::map<Key, std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans.find(k);
  if (it == plans.end()) {
    std::unique_ptr<Plan> p;
    try {
      p = build(k);
    } catch (const dnnl::error&) {
      p = nullptr;
    }
    it = plans.emplace(k, std::move(p)).first;
  }
  return it->second.get();
}

at::MemoryFormat formatOf(bool channelsLast) { return channelsLast ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous; }

struct Forward {
  at::Tensor y, xB, wB;  // the output, and the blocked input and weights the backward reuses
};

Forward forward(const Plan& p, const at::Tensor& x, const at::Tensor& w) {
  RECORD_FUNCTION("tssl_winograd::conv3x3_forward", std::vector<c10::IValue>({x, w}));
  Forward f;
  f.xB = (*p.xIn)(x);
  f.wB = (*p.wIn)(w);
  at::Tensor yB = bytes(p.fwdPd.dst_desc());
  run(p.fwd, p.fwdPd,
      {{DNNL_ARG_SRC, wrap(p.fwdPd.src_desc(), f.xB)},
       {DNNL_ARG_WEIGHTS, wrap(p.fwdPd.weights_desc(), f.wB)},
       {DNNL_ARG_DST, wrap(p.fwdPd.dst_desc(), yB)}});
  f.y = at::empty({x.size(0), w.size(0), x.size(2), x.size(3)}, x.options().memory_format(formatOf(p.xLast)));
  (*p.yOut)(yB, f.y);
  return f;
}

// Outside namespace tssl: the profiler names autograd nodes by their type, and bench/profile reads names that
// begin with "tssl::" as phases of the step.
struct WinogradConv3x3 : torch::autograd::Function<WinogradConv3x3> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const Plan* plan) {
    Forward f = ::forward(*plan, x, w);
    ctx->save_for_backward({x, w, f.xB, f.wB});
    ctx->saved_data["plan"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(plan));
    return f.y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const Plan& p = *reinterpret_cast<const Plan*>(static_cast<intptr_t>(ctx->saved_data["plan"].toInt()));
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &xB = saved[2], &wB = saved[3];
    const at::Tensor g = grads[0].contiguous(formatOf(p.xLast));
    RECORD_FUNCTION("tssl_winograd::conv3x3_backward", std::vector<c10::IValue>({g, x, w}));
    const at::Tensor gB = (*p.gIn)(g);
    at::Tensor gx, gw;
    if (ctx->needs_input_grad(0)) {
      const at::Tensor wD = p.wInForData ? (*p.wInForData)(w) : wB;
      at::Tensor gxB = bytes(p.dataPd.diff_src_desc());
      run(p.data, p.dataPd,
          {{DNNL_ARG_DIFF_DST, wrap(p.dataPd.diff_dst_desc(), gB)},
           {DNNL_ARG_WEIGHTS, wrap(p.dataPd.weights_desc(), wD)},
           {DNNL_ARG_DIFF_SRC, wrap(p.dataPd.diff_src_desc(), gxB)}});
      gx = at::empty(x.sizes(), x.options().memory_format(formatOf(p.xLast)));
      (*p.gxOut)(gxB, gx);
    }
    if (ctx->needs_input_grad(1)) {
      const at::Tensor gW = p.gInForWeights ? (*p.gInForWeights)(g) : gB;
      const at::Tensor xW = p.xInForWeights ? (*p.xInForWeights)(x) : xB;
      at::Tensor gwB = bytes(p.weightsPd.diff_weights_desc());
      run(p.weights, p.weightsPd,
          {{DNNL_ARG_SRC, wrap(p.weightsPd.src_desc(), xW)},
           {DNNL_ARG_DIFF_DST, wrap(p.weightsPd.diff_dst_desc(), gW)},
           {DNNL_ARG_DIFF_WEIGHTS, wrap(p.weightsPd.diff_weights_desc(), gwB)}});
      gw = at::empty(w.sizes(), w.options().memory_format(formatOf(p.wLast)));
      (*p.gwOut)(gwB, gw);
    }
    return {gx, gw, at::Tensor()};
  }
};

bool avx512() {
  // oneDNN's own dispatch decides per shape; this only keeps the status line honest on CPUs without it.
#if defined(__x86_64__) || defined(__i386__)
  return tssl::avx512Allowed() && __builtin_cpu_supports("avx512f") != 0;
#else
  return false;  // oneDNN's Winograd kernels are x86 AVX-512 only
#endif
}

}  // namespace
#endif

// torch-ssl's own F(4×4, 3×3) (kernels/winograd_f43.h) for CPUs with AVX2 and FMA where oneDNN has no Winograd: the
// transforms are AVX2 kernels, the 36 per-tile-element products small-channel AVX2 GEMMs (≤ 256 input channels,
// where OpenBLAS runs such thin products at a third of its peak) or OpenBLAS through at::mm.
namespace {
namespace kn = tssl::kernels;

constexpr int64_t kTileGrain = 16;  // tiles per at::parallel_for unit of a transform
constexpr int64_t kGemmRows = 96;   // rows per unit of the small-channel GEMM (a multiple of its 6-row block)

int64_t tilesOf(int64_t n, int64_t h, int64_t w) { return n * ((h + 3) / 4) * ((w + 3) / 4); }

// U[ξ][c][o] = (G w[o][c] Gᵀ)[ξ] for w (O, C, 3, 3): (36, C, O).
at::Tensor weightTransform(const at::Tensor& w) {
  const int64_t O = w.size(0), C = w.size(1), P = C * O;
  const at::Tensor wt = w.permute({2, 3, 1, 0}).contiguous();  // (3, 3, C, O)
  at::Tensor U = at::empty({36, C, O}, w.options().memory_format(at::MemoryFormat::Contiguous));
  const float* src = wt.data_ptr<float>();
  float* u = U.data_ptr<float>();
  at::parallel_for(0, P / 8, 256, [&](int64_t b, int64_t e) { kn::winogradWeightTransform(src, u, P, 8 * b, 8 * e); });
  return U;
}

// 36 planes of (T, K) times 36 of (K, O).
at::Tensor planeProducts(const at::Tensor& V, const at::Tensor& U) {
  const int64_t T = V.size(1), K = V.size(2), O = U.size(2);
  at::Tensor M = at::empty({36, T, O}, V.options());
  TORCH_INTERNAL_ASSERT(O % 16 == 0);
  at::Tensor P = at::empty({36, O / 16, K, 16}, U.options());
  const float* u = U.data_ptr<float>();
  float* p = P.data_ptr<float>();
  at::parallel_for(0, 36, 1, [&](int64_t b, int64_t e) {
    for (int64_t x = b; x < e; ++x) kn::winogradPackPanels(u + x * K * O, p + x * K * O, K, O);
  });
  const int64_t blocks = (T + kGemmRows - 1) / kGemmRows;
  const float* v = V.data_ptr<float>();
  float* m = M.data_ptr<float>();
  at::parallel_for(0, 36 * blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t x = i / blocks, r0 = (i % blocks) * kGemmRows;
      kn::winogradGemm(v + x * T * K, p + x * K * O, m + x * T * O, K, O, r0, std::min(T, r0 + kGemmRows));
    }
  });
  return M;
}

at::Tensor inputTransform(const at::Tensor& x) {  // x channels_last contiguous
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), T = tilesOf(N, H, W);
  at::Tensor V = at::empty({36, T, C}, x.options().memory_format(at::MemoryFormat::Contiguous));
  const float* xs = x.data_ptr<float>();
  float* v = V.data_ptr<float>();
  at::parallel_for(0, T, kTileGrain, [&](int64_t b, int64_t e) { kn::winogradInputTransform(xs, v, N, H, W, C, b, e); });
  return V;
}

// conv2d(x, w, padding 1) for x channels_last contiguous and U = weightTransform(w) with O output channels.
at::Tensor ownForward(const at::Tensor& x, const at::Tensor& U) {
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), O = U.size(2), T = tilesOf(N, H, W);
  const at::Tensor M = planeProducts(inputTransform(x), U);
  at::Tensor y = at::empty({N, O, H, W}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* m = M.data_ptr<float>();
  float* ys = y.data_ptr<float>();
  at::parallel_for(0, T, kTileGrain, [&](int64_t b, int64_t e) { kn::winogradOutputTransform(m, ys, N, H, W, O, b, e); });
  return y;
}

// The weight gradient: dw[o][c] = Gᵀ (Σ_t V_t ⊗ (A g_t Aᵀ)) G.
at::Tensor ownWeightGrad(const at::Tensor& x, const at::Tensor& g) {  // both channels_last contiguous
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), O = g.size(1), T = tilesOf(N, H, W);
  const at::Tensor V = inputTransform(x);
  at::Tensor dM = at::empty({36, T, O}, g.options().memory_format(at::MemoryFormat::Contiguous));
  const float* gs = g.data_ptr<float>();
  float* dm = dM.data_ptr<float>();
  at::parallel_for(0, T, kTileGrain, [&](int64_t b, int64_t e) { kn::winogradGradOutputTransform(gs, dm, N, H, W, O, b, e); });
  at::Tensor dU = at::empty({36, C, O}, V.options());
  const float* v = V.data_ptr<float>();
  float* du = dU.data_ptr<float>();
  at::parallel_for(0, 36, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) kn::winogradGemmTN(v + i * T * C, dm + i * T * O, du + i * C * O, T, C, O);
  });
  // dw[o][c] = Gᵀ dU[·][c][o] G.
  at::Tensor dw = at::empty({3, 3, C, O}, dU.options());
  const int64_t P = C * O;
  float* dws = dw.data_ptr<float>();
  at::parallel_for(0, P / 8, 256, [&](int64_t b, int64_t e) { kn::winogradWeightGradTransform(du, dws, P, 8 * b, 8 * e); });
  return dw.permute({3, 2, 0, 1});  // (O, C, 3, 3)
}

}  // namespace

struct OwnWinogradConv3x3 : torch::autograd::Function<OwnWinogradConv3x3> {
  // c and o: the channel counts before padding, which the profile's records carry (its FLOPs are the model's).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, int64_t c, int64_t o) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["c"] = c;
    ctx->saved_data["o"] = o;
    return ownForward(x, weightTransform(w));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    const at::Tensor g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    const int64_t c = ctx->saved_data["c"].toInt(), o = ctx->saved_data["o"].toInt();
    RECORD_FUNCTION("tssl_winograd::conv3x3_backward",
                    std::vector<c10::IValue>({g.narrow(1, 0, o), x.narrow(1, 0, c), w.narrow(0, 0, o).narrow(1, 0, c)}));
    at::Tensor gx, gw;
    // The input gradient is the convolution of g with w flipped and its channels swapped, padding 1.
    if (ctx->needs_input_grad(0)) gx = ownForward(g, weightTransform(w.flip({2, 3}).transpose(0, 1)));
    if (ctx->needs_input_grad(1)) gw = ownWeightGrad(x, g).contiguous(w.suggest_memory_format());
    return {gx, gw, at::Tensor(), at::Tensor()};
  }
};

namespace tssl {

namespace {
bool disabledByEnv() { return switchedOff("TORCH_SSL_WINOGRAD"); }

#if defined(TSSL_WITH_WINOGRAD)
bool onednnWinograd() { return avx512(); }
#else
bool onednnWinograd() { return false; }
#endif

// torch-ssl's own F(4×4, 3×3) where oneDNN's is not: an x86 CPU with AVX2 and FMA (kernels/winograd_f43.h).
bool ownWinograd() { return !onednnWinograd() && kn::winogradF43Available(); }

bool operandsFit(const at::Tensor& x, const at::Tensor& w) {
  return x.device().is_cpu() && w.device().is_cpu() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat && x.dim() == 4 &&
         w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3 && x.size(2) >= 1 && x.size(3) >= 1 && x.size(0) >= 1;
}
}  // namespace

bool winogradEnabled() {
  static const bool on = !disabledByEnv() && (onednnWinograd() || ownWinograd());
  return on;
}

std::string winogradStatus() {
  if (disabledByEnv()) return "direct (LibTorch's convolutions; Winograd off: TORCH_SSL_WINOGRAD=0)";
#if defined(TSSL_WITH_WINOGRAD)
  if (onednnWinograd()) {
    const dnnl::version_t* v = dnnl::version();
    return "winograd for float32 3×3 stride-1 convolutions of ≥ " + std::to_string(kMinWinogradPositions) + " output positions (oneDNN " +
           std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
           ", F(4×4, 3×3) on AVX-512), LibTorch's direct oneDNN convolutions for the rest";
  }
#endif
  if (ownWinograd())
    return "winograd for float32 3×3 stride-1 convolutions of ≥ " + std::to_string(kMinWinogradPositions) +
           " output positions (torch-ssl's F(4×4, 3×3) on AVX2 + FMA), LibTorch's direct convolutions for the rest";
  return "direct (LibTorch's convolutions; Winograd needs AVX2 and FMA, which this CPU or build lacks)";
}

at::Tensor winogradConv3x3(const at::Tensor& x, const at::Tensor& w) {
  if (!winogradEnabled() || !operandsFit(x, w)) return at::Tensor();
  const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad());
#if defined(TSSL_WITH_WINOGRAD)
  if (onednnWinograd()) {
    const bool xLast = x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
    const bool wLast = w.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
    const Plan* plan = planFor(Key{x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), xLast, wLast});
    if (!plan) return at::Tensor();
    const at::Tensor xd = x.contiguous(formatOf(xLast)), wd = w.contiguous(formatOf(wLast));
    if (grad) return WinogradConv3x3::apply(xd, wd, plan);
    return ::forward(*plan, xd, wd).y;
  }
#endif
  RECORD_FUNCTION("tssl_winograd::conv3x3_forward", std::vector<c10::IValue>({x, w}));
  // The GEMMs take 16 channels at a time, in and out (the input gradient's outputs are the input channels): other
  // counts (the stem's 3 input channels) are padded with zero channels, differentiably, and the padded outputs dropped.
  const int64_t C = x.size(1), O = w.size(0), padC = (16 - C % 16) % 16, padO = (16 - O % 16) % 16;
  at::Tensor xp = padC ? at::constant_pad_nd(x, {0, 0, 0, 0, 0, padC}) : x;
  const at::Tensor wp = (padC || padO) ? at::constant_pad_nd(w, {0, 0, 0, 0, 0, padC, 0, padO}) : w;
  xp = xp.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor y = grad ? OwnWinogradConv3x3::apply(xp, wp, C, O) : ownForward(xp, weightTransform(wp));
  return padO ? y.narrow(1, 0, O) : y;
}

}  // namespace tssl
