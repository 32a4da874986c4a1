// Row kernels of the fused BatchNorm (+ residual add) (+ ReLU) of models/batch_norm_act.h, for channels_last
// activations: M rows of C contiguous channels, float32 or bfloat16 (stored as uint16 bits), arithmetic in float32.
// Each function handles the rows [r0, r1); the caller splits the rows between threads and sums the per-chunk
// partial sums. Compiled in their own unit with AVX-512 code generation (bn_act_avx512.cc), and so declared here
// without any LibTorch header: nothing inline from elsewhere is compiled with those flags. Call them only where
// kernels::bnActAvailable() is true, and with C a multiple of 16.
#pragma once
#include <cstdint>

namespace tssl::kernels {

/// Whether this build has the kernels and this CPU runs them (AVX-512 F and BW).
bool bnActAvailable();

/// sum[c] += Σ_r (x[r, c] − shift[c]), sumSq[c] += Σ_r (x[r, c] − shift[c])²
void channelShiftedSums(const void* x, bool bf16, int64_t r0, int64_t r1, int64_t C, const float* shift, double* sum, double* sumSq);
/// y = act(x·scale + shift [+ residual]), act = ReLU when `relu`; residual may be null. With a residual, x·scale +
/// shift is rounded to the activation dtype before the add, as LibTorch's BatchNorm output is.
void bnActForward(const void* x, const void* residual, void* y, bool bf16, int64_t r0, int64_t r1, int64_t C, const float* scale, const float* shift,
                  bool relu);
/// ReLU's mask for g = dy where y > 0: from the output y, or (y null) from the forward's maskScale / maskShift
/// recomputing y from x (no residual), or none (all three null: no ReLU).
/// sumG[c] += Σ g, sumGX[c] += Σ g·(x − mean).
void bnActBackwardSums(const void* dy, const void* y, const float* maskScale, const float* maskShift, const void* x, bool bf16, int64_t r0,
                       int64_t r1, int64_t C, const float* mean, double* sumG, double* sumGX);
/// dx = k1·g + k2·(x − mean) + k3, per channel; gOut (may be null) receives g, the residual's gradient.
void bnActBackwardInput(const void* dy, const void* y, const float* maskScale, const float* maskShift, const void* x, void* dx, void* gOut, bool bf16,
                        int64_t r0, int64_t r1, int64_t C, const float* mean, const float* k1, const float* k2, const float* k3);

}  // namespace tssl::kernels
