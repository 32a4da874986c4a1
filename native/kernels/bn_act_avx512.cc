// AVX-512 row kernels of the fused BatchNorm + add + ReLU (bn_act.h). This unit is compiled with -mavx512f
// -mavx512bw and includes only <cstdint> and <immintrin.h>, so no inline function shared with other units is
// generated with AVX-512 instructions; the rest of the engine stays portable and calls in only after the CPU check.
// bfloat16 ↔ float32 as c10::BFloat16 does it: widening is exact, narrowing rounds to nearest even, NaN → 0x7FC0.
#include "kernels/bn_act.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace tssl::kernels {
namespace {

constexpr int64_t kGradRows = 32;  // rows per float32 partial sum of the backward's sums
constexpr int64_t kStatRows = 8;   // rows per float32 partial sum of the forward's statistics
constexpr int64_t kMaxChannels = 4096;

template <bool bf16>
inline __m512 load(const void* p, int64_t i) {
  if constexpr (!bf16) return _mm512_loadu_ps(static_cast<const float*>(p) + i);
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(p) + i));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// The bfloat16 bits of v (round to nearest even; NaN → 0x7FC0), one per 32-bit lane.
inline __m512i bf16Bits(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
  return _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
}

// v rounded to the activation dtype (bfloat16: as stored; float32: itself).
template <bool bf16>
inline __m512 rounded(__m512 v) {
  if constexpr (!bf16) return v;
  return _mm512_castsi512_ps(_mm512_slli_epi32(bf16Bits(v), 16));
}

template <bool bf16>
inline void store(void* p, int64_t i, __m512 v) {
  if constexpr (!bf16) {
    _mm512_storeu_ps(static_cast<float*>(p) + i, v);
  } else {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<uint16_t*>(p) + i), _mm512_cvtepi32_epi16(bf16Bits(v)));
  }
}

inline void flush(const float* part, double* acc, int64_t C) {
  for (int64_t c = 0; c < C; c += 8) {
    const __m512d a = _mm512_loadu_pd(acc + c);
    _mm512_storeu_pd(acc + c, _mm512_add_pd(a, _mm512_cvtps_pd(_mm256_loadu_ps(part + c))));
  }
}

// ReLU's gradient mask, g = dy where y > 0, else 0 (threshold_backward(dy, y, 0)): from the saved output y, or
// (without a residual) recomputed from x as the forward computed y, rounding included, which spares reading y.
struct Mask {
  const void* y;       // the output, or null
  const float* scale;  // or, with y null: the forward's scale and shift (null: no ReLU)
  const float* shift;
};

template <bool bf16>
inline __m512 masked(__m512 g, const Mask& m, __m512 x, int64_t i, int64_t c) {
  __m512 v;
  if (m.y) v = load<bf16>(m.y, i);
  else if (m.scale) v = rounded<bf16>(_mm512_fmadd_ps(x, _mm512_loadu_ps(m.scale + c), _mm512_loadu_ps(m.shift + c)));
  else return g;
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), g);
}

// Σ a and Σ a·v per channel over rows [r0, r1), where term(base, c) gives (a, v) for the 16 channels at c of the row
// starting at element `base`: float32 partial sums over at most `block` rows (each within a few float32 roundings of
// exact), then added into double.
template <class Term>
void pairedChannelSums(int64_t r0, int64_t r1, int64_t C, int64_t block, double* sumA, double* sumAV, const Term& term) {
  alignas(64) float pa[kMaxChannels];
  alignas(64) float pav[kMaxChannels];
  for (int64_t s = r0; s < r1; s += block) {
    const int64_t e = s + block < r1 ? s + block : r1;
    for (int64_t c = 0; c < C; c += 16) {
      _mm512_store_ps(pa + c, _mm512_setzero_ps());
      _mm512_store_ps(pav + c, _mm512_setzero_ps());
    }
    for (int64_t r = s; r < e; ++r) {
      const int64_t base = r * C;
      for (int64_t c = 0; c < C; c += 16) {
        __m512 v;
        const __m512 a = term(base, c, v);
        _mm512_store_ps(pa + c, _mm512_add_ps(_mm512_load_ps(pa + c), a));
        _mm512_store_ps(pav + c, _mm512_fmadd_ps(a, v, _mm512_load_ps(pav + c)));
      }
    }
    flush(pa, sumA, C);
    flush(pav, sumAV, C);
  }
}

// Σ (x − shift) and Σ (x − shift)² per channel in one pass. The shift (the first row) is close to the mean, so the
// variance E[(x − shift)²] − E[x − shift]² does not cancel.
template <bool bf16>
void channelShiftedSumsT(const void* x, int64_t r0, int64_t r1, int64_t C, const float* shift, double* sum, double* sumSq) {
  pairedChannelSums(r0, r1, C, kStatRows, sum, sumSq, [&](int64_t base, int64_t c, __m512& v) {
    v = _mm512_sub_ps(load<bf16>(x, base + c), _mm512_loadu_ps(shift + c));
    return v;
  });
}

template <bool bf16>
void bnActForwardT(const void* x, const void* residual, void* y, int64_t r0, int64_t r1, int64_t C, const float* scale, const float* shift,
                   bool relu) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t base = r * C;
    for (int64_t c = 0; c < C; c += 16) {
      __m512 v = _mm512_fmadd_ps(load<bf16>(x, base + c), _mm512_loadu_ps(scale + c), _mm512_loadu_ps(shift + c));
      // The unfused step rounds BatchNorm's output to the activation dtype before the add; so does this.
      if (residual) v = _mm512_add_ps(rounded<bf16>(v), load<bf16>(residual, base + c));
      if (relu) v = _mm512_max_ps(v, zero);
      store<bf16>(y, base + c, v);
    }
  }
}

template <bool bf16>
void bnActBackwardSumsT(const void* dy, const Mask& mask, const void* x, int64_t r0, int64_t r1, int64_t C, const float* mean, double* sumG,
                        double* sumGX) {
  pairedChannelSums(r0, r1, C, kGradRows, sumG, sumGX, [&](int64_t base, int64_t c, __m512& d) {
    const __m512 xv = load<bf16>(x, base + c);
    d = _mm512_sub_ps(xv, _mm512_loadu_ps(mean + c));
    return masked<bf16>(load<bf16>(dy, base + c), mask, xv, base + c, c);
  });
}

template <bool bf16>
void bnActBackwardInputT(const void* dy, const Mask& mask, const void* x, void* dx, void* gOut, int64_t r0, int64_t r1, int64_t C, const float* mean,
                         const float* k1, const float* k2, const float* k3) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t base = r * C;
    for (int64_t c = 0; c < C; c += 16) {
      const __m512 xv = load<bf16>(x, base + c);
      const __m512 g = masked<bf16>(load<bf16>(dy, base + c), mask, xv, base + c, c);
      if (gOut) store<bf16>(gOut, base + c, g);
      const __m512 d = _mm512_sub_ps(xv, _mm512_loadu_ps(mean + c));
      const __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(k1 + c), g, _mm512_fmadd_ps(_mm512_loadu_ps(k2 + c), d, _mm512_loadu_ps(k3 + c)));
      store<bf16>(dx, base + c, v);
    }
  }
}

}  // namespace

bool bnActAvailable() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }

void channelShiftedSums(const void* x, bool bf16, int64_t r0, int64_t r1, int64_t C, const float* shift, double* sum, double* sumSq) {
  bf16 ? channelShiftedSumsT<true>(x, r0, r1, C, shift, sum, sumSq) : channelShiftedSumsT<false>(x, r0, r1, C, shift, sum, sumSq);
}
void bnActForward(const void* x, const void* residual, void* y, bool bf16, int64_t r0, int64_t r1, int64_t C, const float* scale, const float* shift,
                  bool relu) {
  bf16 ? bnActForwardT<true>(x, residual, y, r0, r1, C, scale, shift, relu) : bnActForwardT<false>(x, residual, y, r0, r1, C, scale, shift, relu);
}
void bnActBackwardSums(const void* dy, const void* y, const float* maskScale, const float* maskShift, const void* x, bool bf16, int64_t r0,
                       int64_t r1, int64_t C, const float* mean, double* sumG, double* sumGX) {
  const Mask m{y, maskScale, maskShift};
  bf16 ? bnActBackwardSumsT<true>(dy, m, x, r0, r1, C, mean, sumG, sumGX) : bnActBackwardSumsT<false>(dy, m, x, r0, r1, C, mean, sumG, sumGX);
}
void bnActBackwardInput(const void* dy, const void* y, const float* maskScale, const float* maskShift, const void* x, void* dx, void* gOut, bool bf16,
                        int64_t r0, int64_t r1, int64_t C, const float* mean, const float* k1, const float* k2, const float* k3) {
  const Mask m{y, maskScale, maskShift};
  bf16 ? bnActBackwardInputT<true>(dy, m, x, dx, gOut, r0, r1, C, mean, k1, k2, k3)
       : bnActBackwardInputT<false>(dy, m, x, dx, gOut, r0, r1, C, mean, k1, k2, k3);
}

}  // namespace tssl::kernels

#else  // no AVX-512 code generation here (another architecture or compiler): the fused path stays off.

namespace tssl::kernels {
bool bnActAvailable() { return false; }
void channelShiftedSums(const void*, bool, int64_t, int64_t, int64_t, const float*, double*, double*) {}
void bnActForward(const void*, const void*, void*, bool, int64_t, int64_t, int64_t, const float*, const float*, bool) {}
void bnActBackwardSums(const void*, const void*, const float*, const float*, const void*, bool, int64_t, int64_t, int64_t, const float*, double*,
                       double*) {}
void bnActBackwardInput(const void*, const void*, const float*, const float*, const void*, void*, void*, bool, int64_t, int64_t, int64_t,
                        const float*, const float*, const float*, const float*) {}
}  // namespace tssl::kernels

#endif
