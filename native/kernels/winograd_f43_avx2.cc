// AVX2 + FMA kernels of torch-ssl's float32 Winograd F(4×4, 3×3): see winograd_f43.h. Compiled with -mavx2 -mfma
// (CMakeLists.txt); no LibTorch header here.
#include "kernels/winograd_f43.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

namespace tssl::kernels {
namespace {

inline __m256 k(float v) { return _mm256_set1_ps(v); }

// The transforms interpolate at 0, 1, -1, 1/2, -2 and ∞ rather than Lavin & Gray's 0, ±1, ±2, ∞: the same count of
// multiplications, and float32 rounding 2.7 times smaller on post-ReLU activations (5.4e-6 -> 2.0e-6 of the output's
// scale on test/winograd.test.ts's layer1 case; Barabasz et al. 2020 study the choice of points). Bᵀ's rows and Aᵀ's
// columns are scaled to small integers, G carrying the inverse scales; all three are exact in float32 but for G's
// sixths, fifteenths and thirtieths.

// Bᵀ applied to six values (a column or a row of the tile).
inline void bT(const __m256 v[6], __m256 t[6]) {
  t[0] =
      _mm256_fmadd_ps(k(2), v[4], _mm256_fmadd_ps(k(3), v[3], _mm256_fnmadd_ps(k(4), v[2], _mm256_fnmadd_ps(k(3), v[1], _mm256_mul_ps(k(2), v[0])))));
  t[1] = _mm256_fmadd_ps(k(2), v[4], _mm256_fmadd_ps(k(5), v[3], _mm256_fnmadd_ps(k(2), v[1], v[2])));
  t[2] = _mm256_fmadd_ps(k(2), v[4], _mm256_fnmadd_ps(k(5), v[2], _mm256_fmadd_ps(k(2), v[1], v[3])));
  t[3] = _mm256_fmadd_ps(k(2), v[3], _mm256_fnmadd_ps(k(2), v[1], _mm256_sub_ps(v[4], v[2])));
  t[4] = _mm256_fmadd_ps(k(2), v[4], _mm256_fnmadd_ps(k(2), v[2], _mm256_sub_ps(v[1], v[3])));
  t[5] =
      _mm256_fmadd_ps(k(2), v[5], _mm256_fmadd_ps(k(3), v[4], _mm256_fnmadd_ps(k(4), v[3], _mm256_fnmadd_ps(k(3), v[2], _mm256_mul_ps(k(2), v[1])))));
}

// Aᵀ applied to six values, giving four.
inline void aT(const __m256 v[6], __m256 s[4]) {
  s[0] = _mm256_fmadd_ps(k(8), v[3], _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v[0], v[1]), v[2]), v[4]));
  s[1] = _mm256_fnmadd_ps(k(2), v[4], _mm256_fmadd_ps(k(4), v[3], _mm256_sub_ps(v[1], v[2])));
  s[2] = _mm256_fmadd_ps(k(4), v[4], _mm256_fmadd_ps(k(2), v[3], _mm256_add_ps(v[1], v[2])));
  s[3] = _mm256_fnmadd_ps(k(8), v[4], _mm256_add_ps(_mm256_add_ps(_mm256_sub_ps(v[1], v[2]), v[3]), v[5]));
}

// A applied to four values, giving six.
inline void a(const __m256 g[4], __m256 u[6]) {
  u[0] = g[0];
  u[1] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(g[0], g[1]), g[2]), g[3]);
  u[2] = _mm256_sub_ps(_mm256_add_ps(_mm256_sub_ps(g[0], g[1]), g[2]), g[3]);
  u[3] = _mm256_fmadd_ps(k(2), g[2], _mm256_fmadd_ps(k(4), g[1], _mm256_fmadd_ps(k(8), g[0], g[3])));
  u[4] = _mm256_fnmadd_ps(k(8), g[3], _mm256_fmadd_ps(k(4), g[2], _mm256_fnmadd_ps(k(2), g[1], g[0])));
  u[5] = g[3];
}

// G applied to three values, giving six.
inline void gG(const __m256 w[3], __m256 u[6]) {
  u[0] = _mm256_mul_ps(k(1.f / 2), w[0]);
  u[1] = _mm256_fmadd_ps(k(1.f / 6), w[2], _mm256_fmadd_ps(k(1.f / 6), w[1], _mm256_mul_ps(k(1.f / 6), w[0])));
  u[2] = _mm256_fnmadd_ps(k(1.f / 6), w[2], _mm256_fmadd_ps(k(1.f / 6), w[1], _mm256_mul_ps(k(-1.f / 6), w[0])));
  u[3] = _mm256_fnmadd_ps(k(1.f / 30), w[2], _mm256_fnmadd_ps(k(1.f / 15), w[1], _mm256_mul_ps(k(-2.f / 15), w[0])));
  u[4] = _mm256_fmadd_ps(k(2.f / 15), w[2], _mm256_fnmadd_ps(k(1.f / 15), w[1], _mm256_mul_ps(k(1.f / 30), w[0])));
  u[5] = _mm256_mul_ps(k(1.f / 2), w[2]);
}

// Gᵀ applied to six values, giving three.
inline void gT(const __m256 v[6], __m256 d[3]) {
  d[0] = _mm256_fmadd_ps(
      k(1.f / 30), v[4],
      _mm256_fnmadd_ps(k(2.f / 15), v[3], _mm256_fnmadd_ps(k(1.f / 6), v[2], _mm256_fmadd_ps(k(1.f / 6), v[1], _mm256_mul_ps(k(1.f / 2), v[0])))));
  d[1] = _mm256_fnmadd_ps(k(1.f / 15), v[4], _mm256_fnmadd_ps(k(1.f / 15), v[3], _mm256_fmadd_ps(k(1.f / 6), v[2], _mm256_mul_ps(k(1.f / 6), v[1]))));
  d[2] = _mm256_fmadd_ps(
      k(1.f / 2), v[5],
      _mm256_fmadd_ps(k(2.f / 15), v[4], _mm256_fnmadd_ps(k(1.f / 30), v[3], _mm256_fnmadd_ps(k(1.f / 6), v[2], _mm256_mul_ps(k(1.f / 6), v[1])))));
}

struct Tile {
  int64_t n, y0, x0;  // image, and the tile's top-left output position
};
inline Tile tileOf(int64_t t, int64_t H, int64_t W) {
  const int64_t th = (H + 3) / 4, tw = (W + 3) / 4;
  const int64_t n = t / (th * tw), r = t % (th * tw);
  return {n, 4 * (r / tw), 4 * (r % tw)};
}

constexpr int64_t kKChunk = 256;  // the GEMMs' depth per pass: one 16-column panel of it stays in L1

// R rows (R ≤ 6) of M[:, 16j .. 16j + 16) += or = V[:, k0 .. k1) · panel j, V's rows K apart.
template <int R>
inline void gemmBlock(const float* V, const float* panel, float* M, int64_t K, int64_t O, int64_t k0, int64_t k1, bool accumulate) {
  __m256 acc[R][2];
  for (int i = 0; i < R; ++i) {
    acc[i][0] = accumulate ? _mm256_loadu_ps(M + i * O) : _mm256_setzero_ps();
    acc[i][1] = accumulate ? _mm256_loadu_ps(M + i * O + 8) : _mm256_setzero_ps();
  }
  for (int64_t kk = k0; kk < k1; ++kk) {
    const __m256 b0 = _mm256_loadu_ps(panel + kk * 16), b1 = _mm256_loadu_ps(panel + kk * 16 + 8);
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(V + i * K + kk);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < R; ++i) {
    _mm256_storeu_ps(M + i * O, acc[i][0]);
    _mm256_storeu_ps(M + i * O + 8, acc[i][1]);
  }
}

// R columns (R ≤ 6) c .. c + R of dU[:, 16j .. 16j + 16) += Σ_{t in [t0, t1)} V[t][c + i] · dM[t][16j ..].
template <int R>
inline void gemmTnBlock(const float* V, const float* dM, float* dU, int64_t C, int64_t O, int64_t t0, int64_t t1) {
  __m256 acc[R][2];
  for (int i = 0; i < R; ++i) {
    acc[i][0] = _mm256_loadu_ps(dU + i * O);
    acc[i][1] = _mm256_loadu_ps(dU + i * O + 8);
  }
  for (int64_t t = t0; t < t1; ++t) {
    const __m256 b0 = _mm256_loadu_ps(dM + t * O), b1 = _mm256_loadu_ps(dM + t * O + 8);
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(V + t * C + i);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < R; ++i) {
    _mm256_storeu_ps(dU + i * O, acc[i][0]);
    _mm256_storeu_ps(dU + i * O + 8, acc[i][1]);
  }
}

template <typename F>
inline void byRows(int64_t n, F&& f) {  // f(offset, rows) for rows in blocks of 6 and the remainder
  int64_t r = 0;
  for (; r + 6 <= n; r += 6) f(r, std::integral_constant<int, 6>{});
  switch (n - r) {
    case 5:
      f(r, std::integral_constant<int, 5>{});
      break;
    case 4:
      f(r, std::integral_constant<int, 4>{});
      break;
    case 3:
      f(r, std::integral_constant<int, 3>{});
      break;
    case 2:
      f(r, std::integral_constant<int, 2>{});
      break;
    case 1:
      f(r, std::integral_constant<int, 1>{});
      break;
    default:
      break;
  }
}

}  // namespace

bool winogradF43Available() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

void winogradInputTransform(const float* x, float* V, int64_t N, int64_t H, int64_t W, int64_t C, int64_t t0, int64_t t1) {
  const int64_t T = N * ((H + 3) / 4) * ((W + 3) / 4), plane = T * C;
  for (int64_t t = t0; t < t1; ++t) {
    const Tile tl = tileOf(t, H, W);
    const float* src[6][6];
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 6; ++j) {
        const int64_t r = tl.y0 - 1 + i, q = tl.x0 - 1 + j;
        src[i][j] = (r >= 0 && r < H && q >= 0 && q < W) ? x + ((tl.n * H + r) * W + q) * C : nullptr;
      }
    float* out = V + t * C;
    for (int64_t c = 0; c < C; c += 8) {
      __m256 tmp[6][6];  // tmp[a][j] = (Bᵀ d)[a][j]
      for (int j = 0; j < 6; ++j) {
        __m256 col[6], r[6];
        for (int i = 0; i < 6; ++i) col[i] = src[i][j] ? _mm256_loadu_ps(src[i][j] + c) : _mm256_setzero_ps();
        bT(col, r);
        for (int i = 0; i < 6; ++i) tmp[i][j] = r[i];
      }
      for (int i = 0; i < 6; ++i) {
        __m256 r[6];
        bT(tmp[i], r);
        for (int j = 0; j < 6; ++j) _mm256_storeu_ps(out + (i * 6 + j) * plane + c, r[j]);
      }
    }
  }
}

void winogradOutputTransform(const float* M, float* y, int64_t N, int64_t H, int64_t W, int64_t O, int64_t t0, int64_t t1) {
  const int64_t T = N * ((H + 3) / 4) * ((W + 3) / 4), plane = T * O;
  for (int64_t t = t0; t < t1; ++t) {
    const Tile tl = tileOf(t, H, W);
    const float* in = M + t * O;
    for (int64_t c = 0; c < O; c += 8) {
      __m256 tmp[4][6];  // tmp[i][b] = (Aᵀ m)[i][b]
      for (int b = 0; b < 6; ++b) {
        __m256 col[6], s[4];
        for (int a2 = 0; a2 < 6; ++a2) col[a2] = _mm256_loadu_ps(in + (a2 * 6 + b) * plane + c);
        aT(col, s);
        for (int i = 0; i < 4; ++i) tmp[i][b] = s[i];
      }
      for (int i = 0; i < 4; ++i) {
        const int64_t r = tl.y0 + i;
        if (r >= H) break;
        __m256 s[4];
        aT(tmp[i], s);
        for (int j = 0; j < 4 && tl.x0 + j < W; ++j) _mm256_storeu_ps(y + ((tl.n * H + r) * W + tl.x0 + j) * O + c, s[j]);
      }
    }
  }
}

void winogradGradOutputTransform(const float* g, float* dM, int64_t N, int64_t H, int64_t W, int64_t O, int64_t t0, int64_t t1) {
  const int64_t T = N * ((H + 3) / 4) * ((W + 3) / 4), plane = T * O;
  for (int64_t t = t0; t < t1; ++t) {
    const Tile tl = tileOf(t, H, W);
    const float* src[4][4];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) {
        const int64_t r = tl.y0 + i, q = tl.x0 + j;
        src[i][j] = (r < H && q < W) ? g + ((tl.n * H + r) * W + q) * O : nullptr;
      }
    float* out = dM + t * O;
    for (int64_t c = 0; c < O; c += 8) {
      __m256 tmp[6][4];  // tmp[a][j] = (A g)[a][j]
      for (int j = 0; j < 4; ++j) {
        __m256 col[4], u[6];
        for (int i = 0; i < 4; ++i) col[i] = src[i][j] ? _mm256_loadu_ps(src[i][j] + c) : _mm256_setzero_ps();
        a(col, u);
        for (int i = 0; i < 6; ++i) tmp[i][j] = u[i];
      }
      for (int i = 0; i < 6; ++i) {
        __m256 u[6];
        a(tmp[i], u);
        for (int j = 0; j < 6; ++j) _mm256_storeu_ps(out + (i * 6 + j) * plane + c, u[j]);
      }
    }
  }
}

void winogradWeightTransform(const float* w, float* U, int64_t P, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; p += 8) {
    __m256 tmp[6][3];  // tmp[a][j] = (G w)[a][j]
    for (int j = 0; j < 3; ++j) {
      __m256 col[3], u[6];
      for (int i = 0; i < 3; ++i) col[i] = _mm256_loadu_ps(w + (i * 3 + j) * P + p);
      gG(col, u);
      for (int a2 = 0; a2 < 6; ++a2) tmp[a2][j] = u[a2];
    }
    for (int a2 = 0; a2 < 6; ++a2) {
      __m256 u[6];
      gG(tmp[a2], u);
      for (int b = 0; b < 6; ++b) _mm256_storeu_ps(U + (a2 * 6 + b) * P + p, u[b]);
    }
  }
}

void winogradWeightGradTransform(const float* dU, float* dw, int64_t P, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; p += 8) {
    __m256 tmp[3][6];  // tmp[i][b] = (Gᵀ dU)[i][b]
    for (int b = 0; b < 6; ++b) {
      __m256 col[6], d[3];
      for (int a2 = 0; a2 < 6; ++a2) col[a2] = _mm256_loadu_ps(dU + (a2 * 6 + b) * P + p);
      gT(col, d);
      for (int i = 0; i < 3; ++i) tmp[i][b] = d[i];
    }
    for (int i = 0; i < 3; ++i) {
      __m256 d[3];
      gT(tmp[i], d);
      for (int j = 0; j < 3; ++j) _mm256_storeu_ps(dw + (i * 3 + j) * P + p, d[j]);
    }
  }
}

void winogradPackPanels(const float* b, float* P, int64_t K, int64_t O) {
  for (int64_t j = 0; j < O / 16; ++j)
    for (int64_t kk = 0; kk < K; ++kk)
      for (int l = 0; l < 16; ++l) P[(j * K + kk) * 16 + l] = b[kk * O + 16 * j + l];
}

void winogradGemm(const float* V, const float* P, float* M, int64_t K, int64_t O, int64_t r0, int64_t r1) {
  for (int64_t k0 = 0; k0 < K; k0 += kKChunk) {
    const int64_t k1 = std::min(K, k0 + kKChunk);
    for (int64_t j = 0; j < O / 16; ++j) {
      const float* panel = P + j * K * 16;
      byRows(r1 - r0, [&](int64_t r, auto rows) {
        gemmBlock<decltype(rows)::value>(V + (r0 + r) * K, panel, M + (r0 + r) * O + 16 * j, K, O, k0, k1, k0 > 0);
      });
    }
  }
}

void winogradGemmTN(const float* V, const float* dM, float* dU, int64_t T, int64_t C, int64_t O) {
  for (int64_t i = 0; i < C * O; ++i) dU[i] = 0.f;
  constexpr int64_t kChunk = 128;  // rows of V and dM per pass, kept in L2 while every block of dU takes them
  for (int64_t t0 = 0; t0 < T; t0 += kChunk) {
    const int64_t t1 = std::min(T, t0 + kChunk);
    for (int64_t j = 0; j < O / 16; ++j)
      byRows(C, [&](int64_t c, auto rows) { gemmTnBlock<decltype(rows)::value>(V + c, dM + 16 * j, dU + c * O + 16 * j, C, O, t0, t1); });
  }
}

}  // namespace tssl::kernels

#else  // no AVX2 + FMA code generation here (another architecture or compiler): the path stays off.

namespace tssl::kernels {
bool winogradF43Available() { return false; }
void winogradInputTransform(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t) {}
void winogradOutputTransform(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t) {}
void winogradGradOutputTransform(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t) {}
void winogradPackPanels(const float*, float*, int64_t, int64_t) {}
void winogradWeightTransform(const float*, float*, int64_t, int64_t, int64_t) {}
void winogradWeightGradTransform(const float*, float*, int64_t, int64_t, int64_t) {}
void winogradGemm(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t) {}
void winogradGemmTN(const float*, const float*, float*, int64_t, int64_t, int64_t) {}
}  // namespace tssl::kernels

#endif
