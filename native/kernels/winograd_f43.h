// The transforms and the small-channel GEMM of torch-ssl's own float32 Winograd F(4×4, 3×3) (models/winograd.h),
// for CPUs with AVX2 and FMA where oneDNN 2.x has no Winograd (it has one only for AVX-512). Lavin & Gray's F(4×4,
// 3×3) at the points winograd_f43_avx2.cc names: Y = Aᵀ[(G w Gᵀ) ⊙ (Bᵀ d B)]A per 6×6 input tile d and 4×4 output
// tile Y. Activations are channels_last (N, H, W, C) float32; transformed tiles are stored as 36 planes of (T, C),
// T = N · ⌈H/4⌉ · ⌈W/4⌉ tiles in (n, tile row, tile column) order. Each function handles the tiles (or GEMM rows)
// [t0, t1), so the caller splits them between threads. Compiled in their own unit with AVX2 + FMA code generation
// (winograd_f43_avx2.cc) and declared here without any LibTorch header; call them only where
// winogradF43Available() is true, with C a multiple of 8.
#pragma once
#include <cstdint>

namespace tssl::kernels {

/// Whether this build has the kernels and this CPU runs them (AVX2 and FMA).
bool winogradF43Available();

/// V[ξ][t][c] = (Bᵀ d_t B)[ξ][c] for the input tiles of x (padding 1 around the map, zero beyond it).
void winogradInputTransform(const float* x, float* V, int64_t N, int64_t H, int64_t W, int64_t C, int64_t t0, int64_t t1);
/// y's 4×4 tile t = (Aᵀ M_t A), clipped to the H × W map; M is 36 planes of (T, O).
void winogradOutputTransform(const float* M, float* y, int64_t N, int64_t H, int64_t W, int64_t O, int64_t t0, int64_t t1);
/// dM[ξ][t][o] = (A g_t Aᵀ)[ξ][o], the gradient of the output transform, for g's 4×4 tiles (zero beyond the map).
void winogradGradOutputTransform(const float* g, float* dM, int64_t N, int64_t H, int64_t W, int64_t O, int64_t t0, int64_t t1);

/// U[ξ][p] = (G w_p Gᵀ)[ξ] for the P filters of w stored as (3, 3, P), p in [p0, p1) (multiples of 8).
void winogradWeightTransform(const float* w, float* U, int64_t P, int64_t p0, int64_t p1);
/// dw[i][j][p] = (Gᵀ dU_p G)[i][j], the weight gradient from dU (36, P), p in [p0, p1) (multiples of 8).
void winogradWeightGradTransform(const float* dU, float* dw, int64_t P, int64_t p0, int64_t p1);

/// The 16-column panels of a (K, O) matrix b, for winogradGemm: P[j][k][0..16) = b[k][16j .. 16j + 16).
void winogradPackPanels(const float* b, float* P, int64_t K, int64_t O);
/// Rows [r0, r1) of M = V · b for one plane: V (T, K) row-major, b packed by winogradPackPanels, M (T, O). O must be
/// a multiple of 16. Depth is taken 256 at a time, so that a panel's part stays in L1 over the rows.
void winogradGemm(const float* V, const float* P, float* M, int64_t K, int64_t O, int64_t r0, int64_t r1);
/// dU = Vᵀ · dM for one plane: V (T, C), dM (T, O) row-major, dU (C, O) overwritten; O a multiple of 16.
void winogradGemmTN(const float* V, const float* dM, float* dU, int64_t T, int64_t C, int64_t O);

}  // namespace tssl::kernels
