// Native CPU selective scan (Mamba-1): forward and backward, float32 and float64.
//
// Built on first use by ssmblocks/ops/_native/build.py (plain g++, no torch headers) and called through ctypes.
// Layouts (all contiguous, row-major):
//   u, delta, z, out, du, ddelta, dz, dout : (batch, dim, len)
//   A, dA                                  : (dim, dstate)
//   B, C, dB, dC                           : (batch, groups, dstate, len); channel d uses group d / (dim / groups)
//   D, delta_bias, dD, ddelta_bias         : (dim)                     -- D, z, delta_bias may be null
//   last_state                             : (batch, dim, dstate)
//   checkpoints                            : (batch, dim, n_chunks, dstate), the state *before* each chunk of
//                                            kChunk steps; written by the forward, read by the backward.
//
// Recurrence (per batch b, channel d, state n):
//   dt_t = softplus(delta_t + delta_bias)  (or delta_t + delta_bias)
//   h_t  = exp(dt_t * A[n]) * h_{t-1} + dt_t * u_t * B_t[n]
//   y_t  = sum_n C_t[n] * h_t[n] + D * u_t ;   out_t = y_t * silu(z_t)  (when z is given)
//
// float32 design (see docs/benchmarks.md and docs/scan_engine.md):
//   * 16 channels of one group sit in the 16 lanes of a vector; each thread owns a (16 channels x 16 states)
//     tile of h in registers. B_t and C_t are shared by the group, so they are scalar broadcasts.
//   * exp is exp2 with log2(e) folded into A once, evaluated by a branch-free polynomial that vectorises.
//   * L is processed in blocks whose per-thread buffers stay in L2; rows are read 16 steps x 16 channels at a
//     time, transposed in registers into the time-major lane layout and prepared there (softplus, dt*u); outputs
//     go back to rows the same way.
//   * States beyond 16 are processed in blocks of 16 (the recurrence is independent per state), and the state
//     count is padded to a multiple of 4 with inert states (A = B = C = 0).
//   * Backward: the forward stores h every kChunk steps; the backward recomputes each chunk into an
//     L2-resident history and walks it in reverse, 8 states at a time (so carries and dA sums stay in
//     registers). Sums over channels (dB, dC) are lane reductions; per-thread private accumulators avoid races
//     and are summed at the end.
// float64 is a plain scalar implementation of the same algorithm (used for exact tests and double precision).
//
// Work is spread over std::threads by parallel.h's parallel_items.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <thread>
#include <vector>

#include "parallel.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t kChunk = 128;       // checkpoint interval of the state, in steps
constexpr int64_t kBlock = 512;       // forward block length (multiple of kChunk)
constexpr int W = 16;                 // vector lanes = channels per tile
constexpr float kLog2e = 1.4426950408889634f;

struct ScanProblem {
  int64_t batch, dim, len, dstate, groups;
  const void *u, *delta, *A, *B, *C, *D, *z, *delta_bias;
  int32_t softplus;
  int32_t num_threads;
};

using ssm::parallel_items;

int64_t num_threads_for(const ScanProblem& p, int64_t items) {
  return std::max<int64_t>(1, std::min<int64_t>(p.num_threads, items));
}

// Sums per-thread private copies [thread][n] into out[n] (out is overwritten).
template <class T>
void reduce_private(const std::vector<T>& priv, int64_t threads, int64_t n, T* out, int n_threads) {
  if (!out) return;
  const int64_t block = 1 << 14;
  parallel_items((n + block - 1) / block, n_threads, [&](int64_t blk, int) {
    int64_t lo = blk * block, hi = std::min(n, lo + block);
    for (int64_t i = lo; i < hi; ++i) {
      T s = 0;
      for (int64_t t = 0; t < threads; ++t) s += priv[t * n + i];
      out[i] = s;
    }
  });
}

// ------------------------------------------------------------------------------------------------------------
// float32 vector helpers (GCC/Clang vector extensions: AVX-512 on x86 with -march=native, NEON on ARM, ...)
// ------------------------------------------------------------------------------------------------------------
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));

inline vf splat(float x) { return vf{} + x; }
inline vf vload(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
#if defined(__AVX512F__)
// One instruction each (the generic forms compile to a compare and a blend); same results, NaN included.
inline vf vmax(vf a, vf b) { return (vf)_mm512_max_ps((__m512)a, (__m512)b); }
inline vf vmin(vf a, vf b) { return (vf)_mm512_min_ps((__m512)a, (__m512)b); }
#else
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
#endif

// 2^f for f in [-1/2, 1/2]: the degree-6 Chebyshev interpolant (relative error 2.5e-9 before float32 rounding).
inline vf exp2_reduced(vf f) {
  vf p = splat(1.5461444574035835e-04f);
  p = p * f + 1.3400428178172593e-03f;
  p = p * f + 9.6180566789568940e-03f;
  p = p * f + 5.5503272266680470e-02f;
  p = p * f + 2.4022650922285238e-01f;
  p = p * f + 6.9314720670283430e-01f;
  return p * f + 1.0f;
}

// 2^x, branch-free: x is split into the nearest integer k and f = x - k, and 2^f is scaled by 2^k. AVX-512 rounds
// and scales with one instruction each; vscalefps itself saturates to 0 / inf, so x only needs the lower clamp -125
// (which also turns -inf into a finite argument; above 128 the result is inf, as exp's; +inf gives NaN). Elsewhere x is clamped to
// [-125, 126] (the result stays a normal float), k comes from the 1.5 * 2^23 rounding trick and is added to the
// exponent bits.
inline vf exp2v(vf x) {
#if defined(__AVX512F__)
  x = vmax(x, splat(-125.f));
  const __m512 k = _mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return (vf)_mm512_scalef_ps((__m512)exp2_reduced(x - (vf)k), k);
#else
  x = vmin(vmax(x, splat(-125.f)), splat(126.f));
  const vf magic = splat(12582912.f);
  const vf t = x + magic;  // the integer bits of t hold k (plus 0x4B400000, which << 23 shifts out)
  return (vf)((vi)exp2_reduced(x - (t - magic)) + ((vi)t << 23));
#endif
}

inline vf expv(vf x) { return exp2v(x * kLog2e); }

// log(1 + w) for w in [0, 1], without a division: w * P(w), P the degree-9 Chebyshev interpolant of log1p(w) / w
// on [0, 1] (relative error 5e-9 before float32 rounding; exact as w -> 0).
inline vf log1p_01(vf w) {
  vf p = splat(-3.176057008524613e-03f);
  p = p * w + 1.9542527214228667e-02f;
  p = p * w - 5.6373612737602000e-02f;
  p = p * w + 1.0543623785499763e-01f;
  p = p * w - 1.5269667068116390e-01f;
  p = p * w + 1.9663274254865887e-01f;
  p = p * w - 2.4951616262368573e-01f;
  p = p * w + 3.3329710498860476e-01f;
  p = p * w - 4.9999892648060390e-01f;
  p = p * w + 9.9999999465629150e-01f;
  return p * w;
}

// exp(-|x|): shared by softplus and its slope.
inline vf exp_neg_abs(vf x) { return expv(-vmax(x, -x)); }

// softplus(x) = max(x, 0) + log1p(exp(-|x|)) from w = exp(-|x|), with torch's threshold (x > 20 -> x).
inline vf softplus_w(vf x, vf w) { return x > splat(20.f) ? x : vmax(x, splat(0.f)) + log1p_01(w); }

// d softplus / dx = sigmoid(x) from w = exp(-|x|) (1 above the threshold, where softplus is the identity).
inline vf softplus_slope_w(vf x, vf w) {
  vf s = (x >= splat(0.f) ? splat(1.f) : w) / (1.f + w);
  return x > splat(20.f) ? splat(1.f) : s;
}

inline vf sigmoidv(vf x) { return 1.f / (1.f + expv(-x)); }

// [a0+a1, a2+a3, ..., a14+a15, b0+b1, ..., b14+b15]
inline vf pair_sums(vf a, vf b) {
  const vi even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const vi odd = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  return __builtin_shuffle(a, b, even) + __builtin_shuffle(a, b, odd);
}

// out[n] = sum over lanes of v[n], for 16 vectors: a tree of 15 two-source shuffles + adds.
inline vf lane_sums16(const vf* v) {
  vf l1[8], l2[4], l3[2];
  for (int i = 0; i < 8; ++i) l1[i] = pair_sums(v[2 * i], v[2 * i + 1]);
  for (int i = 0; i < 4; ++i) l2[i] = pair_sums(l1[2 * i], l1[2 * i + 1]);
  for (int i = 0; i < 2; ++i) l3[i] = pair_sums(l2[2 * i], l2[2 * i + 1]);
  return pair_sums(l3[0], l3[1]);
}

// Applies f element-wise over n floats in vectors of 16; the tail goes through a zero-padded copy.
template <int NIn, class F>
inline void map_row(int64_t n, const float* const (&in)[NIn], float* out, F&& f) {
  int64_t t = 0;
  for (; t + W <= n; t += W) {
    vf args[NIn];
    for (int i = 0; i < NIn; ++i) args[i] = vload(in[i] + t);
    vstore(out + t, f(args));
  }
  if (t < n) {
    float tmp[NIn][W] = {};
    for (int i = 0; i < NIn; ++i) std::memcpy(tmp[i], in[i] + t, (n - t) * sizeof(float));
    vf args[NIn];
    for (int i = 0; i < NIn; ++i) args[i] = vload(tmp[i]);
    float res[W];
    vstore(res, f(args));
    std::memcpy(out + t, res, (n - t) * sizeof(float));
  }
}

// Ask for one cache line ahead of use: into L2 for reading, into L1 for reading, into L1 for writing. On x86 asm
// statements: GCC deletes a loop whose only effect is __builtin_prefetch.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
inline void prefetch_line(const float* p) { asm volatile("prefetcht1 %0" : : "m"(*p)); }
inline void prefetch_line_l1(const float* p) { asm volatile("prefetcht0 %0" : : "m"(*p)); }
inline void prefetch_line_write(const float* p) { asm volatile("prefetchw %0" : : "m"(*p)); }
#else
inline void prefetch_line(const float* p) { __builtin_prefetch(p, 0, 2); }
inline void prefetch_line_l1(const float* p) { __builtin_prefetch(p, 0, 3); }
inline void prefetch_line_write(const float* p) { __builtin_prefetch(p, 1, 3); }
#endif

// Prefetches floats [0, n) of `rows` rows (`stride` apart) for reading: the scan reads rows in short pieces, which
// the hardware prefetchers do not follow. (Rows about to be written are not prefetched here: measured, that only
// adds to the burst of prefetches; prefetch_ahead asks for them shortly before they are written.)
inline void prefetch_rows(const float* p, int64_t rows, int64_t stride, int64_t n) {
  if (!p) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < n; t += W) prefetch_line(p + r * stride + t);
}

// Rows `stride` apart are read (or written) in blocks of 16 steps, in order: for the block at step j, one line of each
// row kAheadL1 steps (two blocks) ahead is asked for in L1, when that step is one of the n steps of the pass.
constexpr int64_t kAheadL1 = 2 * W;
template <void (*Line)(const float*)>
inline void prefetch_ahead(const float* rows, int64_t count, int64_t stride, int64_t j, int64_t n) {
  if (!rows || j + kAheadL1 >= n) return;
  for (int64_t c = 0; c < count; ++c) Line(rows + c * stride + j + kAheadL1);
}

// In-register transpose of a 16x16 block (r[i][j] -> r[j][i]): for s = 1, 2, 4, 8 swap the off-diagonal s x s
// sub-blocks of every 2s x 2s block; each stage is 16 two-source shuffles.
template <int S>
inline void transpose_stage(vf* r) {
  vi lo, hi;
  for (int j = 0; j < W; ++j) {
    lo[j] = (j & S) ? W + j - S : j;
    hi[j] = (j & S) ? W + j : j + S;
  }
  for (int i = 0; i < W; ++i) {
    if (i & S) continue;
    vf a = r[i], b = r[i + S];
    r[i] = __builtin_shuffle(a, b, lo);
    r[i + S] = __builtin_shuffle(a, b, hi);
  }
}

inline void transpose16(vf* r) {
  transpose_stage<1>(r);
  transpose_stage<2>(r);
  transpose_stage<4>(r);
  transpose_stage<8>(r);
}

// lanes[t * 16 + c] -> rows[c * stride + t], for t < n.
inline void lanes_to_rows(const float* lanes, int64_t n, float* rows, int64_t stride) {
  int64_t t0 = 0;
  for (; t0 + W <= n; t0 += W) {
    vf r[W];
    for (int t = 0; t < W; ++t) r[t] = vload(lanes + (t0 + t) * W);
    transpose16(r);
    for (int c = 0; c < W; ++c) vstore(rows + c * stride + t0, r[c]);
  }
  for (; t0 < n; ++t0)
    for (int c = 0; c < W; ++c) rows[c * stride + t0] = lanes[t0 * W + c];
}

// Reads a block of 16 rows x 16 steps (row c at rows + c * stride) into the lane layout: out[t] holds step t of
// the 16 rows. Rows >= count and steps >= n (n <= 16) read as zero.
inline void load_block(const float* rows, int64_t stride, int64_t count, int64_t n, vf* out) {
  if (count == W && n == W) {
    for (int c = 0; c < W; ++c) out[c] = vload(rows + c * stride);
  } else {
    for (int c = 0; c < W; ++c) {
      float tmp[W] = {};
      if (c < count) std::memcpy(tmp, rows + c * stride, n * sizeof(float));
      out[c] = vload(tmp);
    }
  }
  transpose16(out);
}

// The inverse of load_block: writes steps [0, n) of rows [0, count) from the lane layout (v is overwritten).
inline void store_block(vf* v, int64_t count, int64_t n, float* rows, int64_t stride) {
  transpose16(v);
  for (int64_t c = 0; c < count; ++c) {
    if (n == W) vstore(rows + c * stride, v[c]);
    else std::memcpy(rows + c * stride, &v[c], n * sizeof(float));
  }
}

// Geometry of one work item: batch b, group g, a tile of up to 16 consecutive channels of that group.
struct Tile {
  int64_t b, g, d0, count;
};

struct Geometry32 {
  const ScanProblem& p;
  int64_t per_group, tiles_per_group, np;  // np: state count padded to a multiple of 4
  explicit Geometry32(const ScanProblem& p_)
      : p(p_), per_group(p_.dim / p_.groups), tiles_per_group((per_group + W - 1) / W),
        np((p_.dstate + 3) / 4 * 4) {}
  int64_t items() const { return p.batch * p.groups * tiles_per_group; }
  Tile tile(int64_t item) const {
    int64_t j = item % tiles_per_group, bg = item / tiles_per_group;
    int64_t g = bg % p.groups, b = bg / p.groups;
    int64_t d0 = g * per_group + j * W;
    return {b, g, d0, std::min<int64_t>(W, per_group - j * W)};
  }
  int64_t row(const Tile& tl, int64_t c) const { return (tl.b * p.dim + tl.d0 + c) * p.len; }
  int64_t bc_row(const Tile& tl, int64_t n) const { return ((tl.b * p.groups + tl.g) * p.dstate + n) * p.len; }
  int64_t n_chunks() const { return (p.len + kChunk - 1) / kChunk; }
  int64_t ckpt(const Tile& tl, int64_t c, int64_t k) const {
    return ((tl.b * p.dim + tl.d0 + c) * n_chunks() + k) * p.dstate;
  }
  // Per-tile constants: a2 = A * log2(e) and a = A, laid out [n][lane]; padded lanes/states are 0.
  void load_A(const Tile& tl, float* a2, float* a) const {
    const float* A = static_cast<const float*>(p.A);
    std::fill(a2, a2 + np * W, 0.f);
    if (a) std::fill(a, a + np * W, 0.f);
    for (int64_t c = 0; c < tl.count; ++c)
      for (int64_t n = 0; n < p.dstate; ++n) {
        float v = A[(tl.d0 + c) * p.dstate + n];
        a2[n * W + c] = v * kLog2e;
        if (a) a[n * W + c] = v;
      }
  }
  // The per-channel values v[d] of the tile's channels as lanes (0 for lanes beyond the tile, or when v is null).
  vf lanes_of(const void* v, const Tile& tl) const {
    float lanes[W] = {};
    if (v)
      for (int64_t c = 0; c < tl.count; ++c) lanes[c] = static_cast<const float*>(v)[tl.d0 + c];
    return vload(lanes);
  }
  // Prepares steps [0, n) of the tile's rows from offset row0 (rows are len apart) in the lane layout
  // [t * 16 + lane]: dt = softplus(delta + bias) (or delta + bias), dt * u, u, and with Slope d dt / d delta.
  // The rows are read 16 steps x 16 channels at a time and transposed in registers. Steps beyond n (up to the next
  // multiple of 16) and lanes beyond the tile see inputs of zero; their values are never used.
  template <bool Slope>
  void prepare_lanes(const Tile& tl, int64_t row0, int64_t n, float* dt, float* dtu, float* uu, float* slope) const {
    const float* u = static_cast<const float*>(p.u);
    const float* delta = static_cast<const float*>(p.delta);
    const vf bias_v = lanes_of(p.delta_bias, tl);
    for (int64_t j = 0; j < n; j += W) {
      const int64_t nj = std::min<int64_t>(W, n - j);
      vf dl[W], uv[W];
      prefetch_ahead<prefetch_line_l1>(delta + row0, tl.count, p.len, j, n);
      prefetch_ahead<prefetch_line_l1>(u + row0, tl.count, p.len, j, n);
      load_block(delta + row0 + j, p.len, tl.count, nj, dl);
      load_block(u + row0 + j, p.len, tl.count, nj, uv);
#pragma GCC unroll 16
      for (int s = 0; s < W; ++s) {
        const int64_t at = (j + s) * W;
        const vf x = dl[s] + bias_v;
        vf d = x, sl = splat(1.f);
        if (p.softplus) {
          const vf e = exp_neg_abs(x);
          d = softplus_w(x, e);
          if (Slope) sl = softplus_slope_w(x, e);
        }
        vstore(dt + at, d);
        vstore(dtu + at, d * uv[s]);
        vstore(uu + at, uv[s]);
        if (Slope) vstore(slope + at, sl);
      }
    }
  }
  // Writes the tile's state h ([state][lane], np states) as checkpoint k of its channels, 16 states at a time
  // through an in-register transpose (a channel's states are contiguous in the checkpoints).
  void store_state(const Tile& tl, int64_t k, const float* h, float* checkpoints) const {
    for (int64_t s0 = 0; s0 < p.dstate; s0 += W) {
      const int64_t m = std::min<int64_t>(W, p.dstate - s0);
      vf r[W];
      for (int64_t s = 0; s < W; ++s) r[s] = s < m ? vload(h + (s0 + s) * W) : splat(0.f);
      transpose16(r);
      for (int64_t c = 0; c < tl.count; ++c) std::memcpy(checkpoints + ckpt(tl, c, k) + s0, &r[c], m * sizeof(float));
    }
  }
  // The inverse for states [s0, s0 + nb) of checkpoint k: hist[s * 16 + lane]; states beyond dstate and lanes beyond
  // the tile are 0.
  void load_state(const Tile& tl, int64_t k, int64_t s0, int64_t nb, const float* checkpoints, float* hist) const {
    const int64_t m = std::min<int64_t>(nb, p.dstate - s0);
    vf r[W];
    for (int64_t c = 0; c < W; ++c) {
      float tmp[W] = {};
      if (c < tl.count) std::memcpy(tmp, checkpoints + ckpt(tl, c, k) + s0, m * sizeof(float));
      r[c] = vload(tmp);
    }
    transpose16(r);
    for (int64_t s = 0; s < nb; ++s) vstore(hist + s * W, r[s]);
  }
  // B or C -> time-major (batch, groups, len, np), padded states 0: shared by every tile of a group.
  std::vector<float> time_major(const void* src) const {
    const float* s = static_cast<const float*>(src);
    std::vector<float> out(p.batch * p.groups * p.len * np);
    const int64_t block = 1024, n_blocks = (p.len + block - 1) / block;
    parallel_items(p.batch * p.groups * n_blocks, p.num_threads, [&](int64_t item, int) {
      const int64_t bg = item / n_blocks, t0 = (item % n_blocks) * block, t1 = std::min(p.len, t0 + block);
      to_time_major(s + bg * p.dstate * p.len + t0, t1 - t0, out.data() + (bg * p.len + t0) * np);
    });
    return out;
  }
  // Steps [0, n) of one group's B or C rows (dstate rows, len apart) -> dst[t * np + state], padded states 0;
  // 16 states x 16 steps at a time, by in-register transposes.
  void to_time_major(const float* rows, int64_t n, float* dst) const {
    for (int64_t s0 = 0; s0 < np; s0 += W) {
      const int64_t nb = std::min<int64_t>(W, np - s0);
      int64_t t = 0;
      for (; t + W <= n; t += W) {
        vf r[W];
        for (int64_t k = 0; k < W; ++k) r[k] = s0 + k < p.dstate ? vload(rows + (s0 + k) * p.len + t) : splat(0.f);
        transpose16(r);
        for (int64_t j = 0; j < W; ++j) std::memcpy(dst + (t + j) * np + s0, &r[j], nb * sizeof(float));
      }
      for (; t < n; ++t)
        for (int64_t k = s0; k < s0 + nb; ++k) dst[t * np + k] = k < p.dstate ? rows[k * p.len + t] : 0.f;
    }
  }
  const float* group_rows(const std::vector<float>& tm, const Tile& tl, int64_t t0) const {
    return tm.data() + ((tl.b * p.groups + tl.g) * p.len + t0) * np;
  }
};

// Runs steps [t0, t1) of the recurrence for NB states: h (NB vectors) in registers; y[t] += sum_n C h.
template <int NB>
void forward_steps(const float* dt, const float* dtu, const float* bt, const float* ct, int64_t np,
                   const float* a2, float* h_io, float* y, int64_t t0, int64_t t1, bool accumulate) {
  vf h[NB];  // the state stays in registers; a2 is read from L1 (registers would spill)
  for (int n = 0; n < NB; ++n) h[n] = vload(h_io + n * W);
  for (int64_t t = t0; t < t1; ++t) {
    const vf d = vload(dt + t * W), x = vload(dtu + t * W);
    const float* bv = bt + t * np;
    const float* cv = ct + t * np;
    vf acc = accumulate ? vload(y + t * W) : splat(0.f);
#pragma GCC unroll 16
    for (int n = 0; n < NB; ++n) {
      h[n] = exp2v(d * vload(a2 + n * W)) * h[n] + x * bv[n];
      acc += h[n] * cv[n];
    }
    vstore(y + t * W, acc);
  }
  for (int n = 0; n < NB; ++n) vstore(h_io + n * W, h[n]);
}

using ForwardSteps = void (*)(const float*, const float*, const float*, const float*, int64_t, const float*, float*,
                              float*, int64_t, int64_t, bool);

ForwardSteps forward_steps_for(int64_t nb) {
  switch (nb) {
    case 4: return forward_steps<4>;
    case 8: return forward_steps<8>;
    case 12: return forward_steps<12>;
    default: return forward_steps<16>;
  }
}

void forward_f32(const ScanProblem& p, float* out, float* last_state, float* checkpoints) {
  const Geometry32 geo(p);
  const int64_t np = geo.np, blk = std::min<int64_t>(kBlock, (p.len + kChunk - 1) / kChunk * kChunk);
  const int64_t threads = num_threads_for(p, geo.items());
  struct Work {
    std::vector<float> dt, dtu, uu, y, h, a2;  // lane layout [t * 16 + lane], state tile [n][lane]
  };
  std::vector<Work> work(threads);
  for (auto& w : work) {
    for (auto* v : {&w.dt, &w.dtu, &w.uu, &w.y}) v->resize(blk * W);
    w.h.resize(np * W); w.a2.resize(np * W);
  }
  const std::vector<float> Bt = geo.time_major(p.B), Ct = geo.time_major(p.C);
  const float* u = static_cast<const float*>(p.u);
  const float* z = static_cast<const float*>(p.z);

  parallel_items(geo.items(), static_cast<int>(threads), [&](int64_t item, int tid) {
    Work& w = work[tid];
    const Tile tl = geo.tile(item);
    const vf D_v = geo.lanes_of(p.D, tl);
    geo.load_A(tl, w.a2.data(), nullptr);
    std::fill(w.h.begin(), w.h.end(), 0.f);
    for (int64_t t0 = 0; t0 < p.len; t0 += blk) {
      const int64_t n = std::min(blk, p.len - t0), row0 = geo.row(tl, 0) + t0;
      geo.prepare_lanes<false>(tl, row0, n, w.dt.data(), w.dtu.data(), w.uu.data(), nullptr);
      if (t0 + blk < p.len) {  // the next block's rows arrive while this block computes
        const int64_t off = row0 + blk, n_next = std::min(blk, p.len - t0 - blk);
        for (const float* src : {u, static_cast<const float*>(p.delta), z})
          prefetch_rows(src ? src + off : nullptr, tl.count, p.len, n_next);
      }
      const float *bt = geo.group_rows(Bt, tl, t0), *ct = geo.group_rows(Ct, tl, t0);
      for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
        const int64_t c1 = std::min(n, c0 + kChunk);
        if (checkpoints) {
          const int64_t k = (t0 + c0) / kChunk;
          geo.store_state(tl, k, w.h.data(), checkpoints);
        }
        for (int64_t s0 = 0; s0 < np; s0 += W) {
          forward_steps_for(std::min<int64_t>(W, np - s0))(
              w.dt.data(), w.dtu.data(), bt + s0, ct + s0, np, w.a2.data() + s0 * W,
              w.h.data() + s0 * W, w.y.data(), c0, c1, s0 > 0);
        }
      }
      // out = (y + D u) * silu(z), in the lane layout, transposed back to rows 16 steps at a time
      for (int64_t j = 0; j < n; j += W) {
        const int64_t nj = std::min<int64_t>(W, n - j);
        vf o[W], zv[W];
        if (z) load_block(z + row0 + j, p.len, tl.count, nj, zv);
        for (int s = 0; s < W; ++s) {
          const int64_t at = (j + s) * W;
          o[s] = vload(w.y.data() + at) + D_v * vload(w.uu.data() + at);
          if (z) o[s] = o[s] * zv[s] * sigmoidv(zv[s]);
        }
        store_block(o, tl.count, nj, out + row0 + j, p.len);
      }
    }
    if (last_state)
      for (int64_t c = 0; c < tl.count; ++c)
        for (int64_t s = 0; s < p.dstate; ++s) last_state[(tl.b * p.dim + tl.d0 + c) * p.dstate + s] = w.h[s * W + c];
  });
}

// ------------------------------------------------------------------------------------------------------------
// float32 backward
//
// One work item is (batch, group, a set of up to kMaxSet consecutive channel tiles of that group). It walks the
// checkpoint chunks in reverse; in each chunk it runs every tile of its set (recompute the chunk's states, reverse
// pass, per-channel outputs). dB and dC are sums over the channels of a group: each tile adds its terms in lane
// form (one vector per step and state) into a chunk accumulator, so a single lane reduction per chunk serves the
// whole set; its result is added into dB / dC under a lock per (batch, group).
// ------------------------------------------------------------------------------------------------------------
constexpr int64_t kMaxSet = 8;

template <class F>
void with_flag(bool b, F&& f) {
  if (b) f(std::true_type{});
  else f(std::false_type{});
}

// Recomputes steps [0, n) of one chunk for NB states of a block of `stride` states (NB <= 8 keeps the states,
// their inputs and the exp's constants in the 32 vector registers). hist holds h0 in slot 0; stores h_t in slot
// t + 1 and exp(dt_t A) in ahist[t] (slots of `stride` states). Adds dy_t * h_t into the dC accumulator
// acc_c[t * np * W + k * W] (stores it when First), and with Y adds sum_n C_t h_t into y (needed for dz).
template <int NB, bool First, bool Y>
void recompute_chunk(const float* dt, const float* dtu, const float* dy, const float* bt, const float* ct, int64_t np,
                     const float* a2, float* hist, float* ahist, float* acc_c, float* y, int64_t n, int64_t stride) {
  vf h[NB];
  for (int k = 0; k < NB; ++k) h[k] = vload(hist + k * W);
  for (int64_t t = 0; t < n; ++t) {
    const vf d = vload(dt + t * W), x = vload(dtu + t * W), g = vload(dy + t * W);
    const float* bv = bt + t * np;
    const float* cv = ct + t * np;
    float* pc = acc_c + t * np * W;
    vf acc = Y ? vload(y + t * W) : splat(0.f);
#pragma GCC unroll 16
    for (int k = 0; k < NB; ++k) {
      const vf e = exp2v(d * vload(a2 + k * W));
      h[k] = e * h[k] + x * bv[k];
      vstore(ahist + (t * stride + k) * W, e);
      vstore(hist + ((t + 1) * stride + k) * W, h[k]);
      vstore(pc + k * W, First ? g * h[k] : vload(pc + k * W) + g * h[k]);
      if (Y) acc += h[k] * cv[k];
    }
    if (Y) vstore(y + t * W, acc);
  }
}

// Reverse pass over one chunk for NB <= 8 states of a block of `stride` states (the carries and the dA sums of
// the NB states stay in registers). g_carry holds exp(dt_{t+1} A) * dL/dh_{t+1} from the later chunk.
// With g_t = dL/dh_t = C_t dy_t + g_carry: adds dL/d dt (A-weighted and B-weighted sums over states) into gdt,
// sum_n g B into gbu, dt * exp(dt A) * g * h_{t-1} into the dA lanes, and g * dt * u into the dB accumulator
// (stored when First). Init: the first sub-block of the tile, which stores gdt and gbu instead of adding.
// Last: the tile's last sub-block, where both sums are complete; it stores the per-channel outputs instead,
// ddelta = dL/d dt * slope into gdt and du = dt * sum_n g B + D * dy into gbu, and adds ddelta and dy * u into
// the per-lane sums out.dbias and out.dD.
struct ChannelOut {
  const float* slope;
  vf D, dbias, dD;
};

template <int NB, bool First, bool Init, bool Last>
void reverse_chunk(const float* dt, const float* uu, const float* dy, const float* bt, const float* ct, int64_t np,
                   const float* a_nat, const float* hist, const float* ahist, float* g_carry, float* dA_lanes,
                   float* gdt, float* gbu, float* acc_b, int64_t n, int64_t stride, ChannelOut& out) {
  vf gc[NB], dA[NB];
  for (int k = 0; k < NB; ++k) gc[k] = vload(g_carry + k * W), dA[k] = vload(dA_lanes + k * W);
  const vf D_v = out.D;
  vf dbias = out.dbias, dD = out.dD;
  for (int64_t t = n - 1; t >= 0; --t) {
    const vf d = vload(dt + t * W), uv = vload(uu + t * W), dyv = vload(dy + t * W);
    const vf du = d * uv;
    const float* bv = bt + t * np;
    const float* cv = ct + t * np;
    float* pb = acc_b + t * np * W;
    vf gd = splat(0.f), gb = splat(0.f);
#pragma GCC unroll 8
    for (int k = 0; k < NB; ++k) {
      const vf e = vload(ahist + (t * stride + k) * W);
      const vf hprev = vload(hist + (t * stride + k) * W);
      const vf g = dyv * cv[k] + gc[k];
      const vf ge = g * e;
      const vf q = ge * hprev;
      gd += vload(a_nat + k * W) * q;
      dA[k] += d * q;
      gb += g * bv[k];
      vstore(pb + k * W, First ? g * du : vload(pb + k * W) + g * du);
      gc[k] = ge;
    }
    const vf gdt_t = Init ? gd + uv * gb : vload(gdt + t * W) + gd + uv * gb;
    const vf gbu_t = Init ? gb : vload(gbu + t * W) + gb;
    if (Last) {
      const vf gdelta = gdt_t * vload(out.slope + t * W);
      vstore(gdt + t * W, gdelta);
      vstore(gbu + t * W, d * gbu_t + D_v * dyv);
      dbias += gdelta;
      dD += dyv * uv;
    } else {
      vstore(gdt + t * W, gdt_t);
      vstore(gbu + t * W, gbu_t);
    }
  }
  for (int k = 0; k < NB; ++k) vstore(g_carry + k * W, gc[k]), vstore(dA_lanes + k * W, dA[k]);
  if (Last) out.dbias = dbias, out.dD = dD;
}

// Lane sums of a chunk accumulator acc[(t * np + s) * W + lane], t < n, as rows: rows[s * kChunk + t] (rows holds
// np rounded up to 16 rows). red: scratch of kChunk * W floats.
void lane_sums_to_rows(const float* acc, int64_t np, int64_t n, float* red, float* rows) {
  for (int64_t s0 = 0; s0 < np; s0 += W) {
    const int64_t nb = std::min<int64_t>(W, np - s0);
    for (int64_t t = 0; t < n; ++t) {
      vf v[W];
      for (int64_t k = 0; k < W; ++k) v[k] = k < nb ? vload(acc + (t * np + s0 + k) * W) : splat(0.f);
      vstore(red + t * W, lane_sums16(v));
    }
    lanes_to_rows(red, n, rows + s0 * kChunk, kChunk);
  }
}

// out[s * len + t] += rows[s * kChunk + t] for s < dstate, t < n.
void add_rows(const float* rows, int64_t dstate, int64_t n, int64_t len, float* out) {
  for (int64_t s = 0; s < dstate; ++s) {
    float* dst = out + s * len;
    const float* in[2] = {dst, rows + s * kChunk};
    map_row<2>(n, in, dst, [](const vf* a) { return a[0] + a[1]; });
  }
}

struct BackwardOut {
  const float* dout;
  float *du, *ddelta, *dA, *dB, *dC, *dD, *dz, *ddelta_bias;
};

void backward_f32(const ScanProblem& p, const float* checkpoints, const BackwardOut& o) {
  const Geometry32 geo(p);
  const int64_t np = geo.np, L = p.len, C = kChunk, tpg = geo.tiles_per_group, n_bg = p.batch * p.groups;
  // Tile sets: large enough to amortise the lane reductions, small enough to leave ~4 items per thread.
  const int64_t wanted_sets = std::min<int64_t>(tpg, std::max<int64_t>(1, (4 * p.num_threads + n_bg - 1) / n_bg));
  const int64_t set = std::min<int64_t>(kMaxSet, (tpg + wanted_sets - 1) / wanted_sets);
  const int64_t sets_per_group = (tpg + set - 1) / set;
  const int64_t items = n_bg * sets_per_group;
  const int64_t threads = num_threads_for(p, items);
  const int64_t bc_size = n_bg * p.dstate * L;
  parallel_items((bc_size + (1 << 16) - 1) >> 16, p.num_threads, [&](int64_t blk, int) {
    const int64_t lo = blk << 16, hi = std::min(bc_size, lo + (1 << 16));
    std::fill(o.dB + lo, o.dB + hi, 0.f);
    std::fill(o.dC + lo, o.dC + hi, 0.f);
  });
  std::unique_ptr<std::mutex[]> bc_locks(new std::mutex[n_bg]);
  // per-thread private accumulators for the sums over the batch
  std::vector<float> dA_priv(threads * p.dim * p.dstate, 0.f), dD_priv(threads * p.dim, 0.f),
      dbias_priv(threads * p.dim, 0.f);
  struct Work {
    // lane-layout rows of the current chunk and tile: [t * 16 + lane]
    std::vector<float> dt, dtu, uu, dy, slope, y, gdt, gbu;
    std::vector<float> hist, ahist, acc_b, acc_c, red, rows_b, rows_c, bt, ct;  // bt, ct: [t * np + state]
    // per tile of the set: [tile][state][lane] and [tile][lane]
    std::vector<float> carry, dA_lanes, a2, a_nat, dD_lanes, dbias_lanes;
  };
  std::vector<Work> work(threads);
  for (auto& w : work) {
    for (auto* v : {&w.dt, &w.dtu, &w.uu, &w.dy, &w.slope, &w.y, &w.gdt, &w.gbu, &w.red}) v->resize(C * W);
    w.rows_b.resize((np + W - 1) / W * W * C);
    w.rows_c.resize((np + W - 1) / W * W * C);
    w.hist.resize((C + 1) * W * W);
    w.ahist.resize(C * W * W);
    w.acc_b.resize(C * np * W);
    w.acc_c.resize(C * np * W);
    w.bt.resize(C * np);
    w.ct.resize(C * np);
    for (auto* v : {&w.carry, &w.dA_lanes, &w.a2, &w.a_nat}) v->resize(set * np * W);
    for (auto* v : {&w.dD_lanes, &w.dbias_lanes}) v->resize(set * W);
  }
  const float* u = static_cast<const float*>(p.u);
  const float* delta = static_cast<const float*>(p.delta);
  const float* z = static_cast<const float*>(p.z);

  parallel_items(items, static_cast<int>(threads), [&](int64_t item, int tid) {
    Work& w = work[tid];
    const int64_t bg = item / sets_per_group, j0 = (item % sets_per_group) * set;
    const int64_t m = std::min(set, tpg - j0);
    const int64_t tile_state = np * W;
    for (int64_t i = 0; i < m; ++i) {
      geo.load_A(geo.tile(bg * tpg + j0 + i), w.a2.data() + i * tile_state, w.a_nat.data() + i * tile_state);
    }
    for (auto* v : {&w.carry, &w.dA_lanes, &w.dD_lanes, &w.dbias_lanes}) std::fill(v->begin(), v->end(), 0.f);
    for (int64_t k = geo.n_chunks() - 1; k >= 0; --k) {
      const int64_t t0 = k * C, n = std::min(C, L - t0);
      // the chunk's B and C, time-major (one group's, shared by the set)
      const int64_t bc_row0 = bg * p.dstate * L + t0;
      geo.to_time_major(static_cast<const float*>(p.B) + bc_row0, n, w.bt.data());
      geo.to_time_major(static_cast<const float*>(p.C) + bc_row0, n, w.ct.data());
      if (k > 0)  // the previous chunk's B and C arrive while the set computes
        for (const void* src : {p.B, p.C}) prefetch_rows(static_cast<const float*>(src) + bc_row0 - C, p.dstate, L, C);
      for (int64_t i = 0; i < m; ++i) {
        const Tile tl = geo.tile(bg * tpg + j0 + i);
        const int64_t row0 = geo.row(tl, 0) + t0;  // rows of the tile's channels are L apart
        const vf D_v = geo.lanes_of(p.D, tl);
        // The chunk's inputs in the lane layout: dt, dt * u, u, d dt / d delta, and dy = dout * silu(z).
        geo.prepare_lanes<true>(tl, row0, n, w.dt.data(), w.dtu.data(), w.uu.data(), w.slope.data());
        for (int64_t j = 0; j < n; j += W) {
          const int64_t nj = std::min<int64_t>(W, n - j);
          vf dy[W], zv[W];
          prefetch_ahead<prefetch_line_l1>(o.dout + row0, tl.count, L, j, n);
          prefetch_ahead<prefetch_line_l1>(z ? z + row0 : nullptr, tl.count, L, j, n);
          load_block(o.dout + row0 + j, L, tl.count, nj, dy);
          if (z) {
            load_block(z + row0 + j, L, tl.count, nj, zv);
            for (int s = 0; s < W; ++s) dy[s] = dy[s] * zv[s] * sigmoidv(zv[s]);
          }
          for (int s = 0; s < W; ++s) vstore(w.dy.data() + (j + s) * W, dy[s]);
        }
        // the next unit's rows (the set's next tile, or its first tile in the previous chunk) arrive in L2 while
        // this one computes
        if (i + 1 < m || k > 0) {
          const Tile next = geo.tile(bg * tpg + j0 + (i + 1 < m ? i + 1 : 0));
          const int64_t next_k = i + 1 < m ? k : k - 1, next_row0 = geo.row(next, 0) + next_k * C;
          for (const float* src : {u, delta, o.dout, z})
            prefetch_rows(src ? src + next_row0 : nullptr, next.count, L, std::min(C, L - next_k * C));
          prefetch_rows(checkpoints + geo.ckpt(next, 0, next_k), next.count, geo.n_chunks() * p.dstate, p.dstate);
        }
        const float *bt_chunk = w.bt.data(), *ct_chunk = w.ct.data();
        ChannelOut chan{w.slope.data(), D_v, vload(w.dbias_lanes.data() + i * W), vload(w.dD_lanes.data() + i * W)};
        if (z) std::fill(w.y.begin(), w.y.end(), 0.f);

        for (int64_t s0 = 0; s0 < np; s0 += W) {
          const int64_t nb = std::min<int64_t>(W, np - s0);
          geo.load_state(tl, k, s0, nb, checkpoints, w.hist.data());  // hist slot 0: the state before the chunk
          const float *bt = bt_chunk + s0, *ct = ct_chunk + s0;
          const int64_t ts = i * tile_state + s0 * W;
          // per sub-block of up to 8 states: the recomputation, then the reverse pass
          for (int64_t k0 = 0; k0 < nb; k0 += 8) {
            with_flag(i == 0, [&](auto first) {
              with_flag(nb - k0 >= 8, [&](auto eight) {
                constexpr int sub = eight ? 8 : 4;
                with_flag(z != nullptr, [&](auto Y) {
                  recompute_chunk<sub, first, Y>(w.dt.data(), w.dtu.data(), w.dy.data(), bt + k0, ct + k0, np,
                                                 w.a2.data() + ts + k0 * W, w.hist.data() + k0 * W,
                                                 w.ahist.data() + k0 * W, w.acc_c.data() + (s0 + k0) * W, w.y.data(),
                                                 n, nb);
                });
                with_flag(s0 == 0 && k0 == 0, [&](auto init) {
                  with_flag(s0 + W >= np && k0 + 8 >= nb, [&](auto last) {
                    reverse_chunk<sub, first, init, last>(
                        w.dt.data(), w.uu.data(), w.dy.data(), bt + k0, ct + k0, np, w.a_nat.data() + ts + k0 * W,
                        w.hist.data() + k0 * W, w.ahist.data() + k0 * W, w.carry.data() + ts + k0 * W,
                        w.dA_lanes.data() + ts + k0 * W, w.gdt.data(), w.gbu.data(),
                        w.acc_b.data() + (s0 + k0) * W, n, nb, chan);
                  });
                });
              });
            });
          }
        }
        // Per-channel outputs (ddelta and du from the reverse pass; dz = dout * (y + D u) * silu'(z)),
        // transposed back to rows 16 steps at a time.
        for (int64_t j = 0; j < n; j += W) {
          const int64_t nj = std::min<int64_t>(W, n - j);
          vf gdelta[W], gu[W];
          for (float* dst : {o.ddelta, o.du, o.dz})
            prefetch_ahead<prefetch_line_write>(dst ? dst + row0 : nullptr, tl.count, L, j, n);
          for (int s = 0; s < W; ++s) {
            const int64_t at = (j + s) * W;
            gdelta[s] = s < nj ? vload(w.gdt.data() + at) : splat(0.f);
            gu[s] = s < nj ? vload(w.gbu.data() + at) : splat(0.f);
          }
          store_block(gdelta, tl.count, nj, o.ddelta + row0 + j, L);
          store_block(gu, tl.count, nj, o.du + row0 + j, L);
          if (z) {
            vf dout_v[W], zv[W];
            load_block(o.dout + row0 + j, L, tl.count, nj, dout_v);
            load_block(z + row0 + j, L, tl.count, nj, zv);
            for (int s = 0; s < W; ++s) {
              const int64_t at = (j + s) * W;
              const vf sg = sigmoidv(zv[s]);
              dout_v[s] = dout_v[s] * (vload(w.y.data() + at) + D_v * vload(w.uu.data() + at)) * sg *
                          (1.f + zv[s] * (1.f - sg));
            }
            store_block(dout_v, tl.count, nj, o.dz + row0 + j, L);
          }
        }
        vstore(w.dD_lanes.data() + i * W, chan.dD);
        vstore(w.dbias_lanes.data() + i * W, chan.dbias);
      }
      // one lane reduction for the whole set, added into dB / dC of this (batch, group)
      lane_sums_to_rows(w.acc_b.data(), np, n, w.red.data(), w.rows_b.data());
      lane_sums_to_rows(w.acc_c.data(), np, n, w.red.data(), w.rows_c.data());
      std::lock_guard<std::mutex> lock(bc_locks[bg]);
      add_rows(w.rows_b.data(), p.dstate, n, L, o.dB + bc_row0);
      add_rows(w.rows_c.data(), p.dstate, n, L, o.dC + bc_row0);
    }
    float* dAp = dA_priv.data() + tid * p.dim * p.dstate;
    for (int64_t i = 0; i < m; ++i) {
      const Tile tl = geo.tile(bg * tpg + j0 + i);
      const float* lanes = w.dA_lanes.data() + i * tile_state;
      for (int64_t c = 0; c < tl.count; ++c) {
        for (int64_t s = 0; s < p.dstate; ++s) dAp[(tl.d0 + c) * p.dstate + s] += lanes[s * W + c];
        dD_priv[tid * p.dim + tl.d0 + c] += w.dD_lanes[i * W + c];
        dbias_priv[tid * p.dim + tl.d0 + c] += w.dbias_lanes[i * W + c];
      }
    }
  });
  const int nt = p.num_threads;
  reduce_private(dA_priv, threads, p.dim * p.dstate, o.dA, nt);
  reduce_private(dD_priv, threads, p.dim, o.dD, nt);
  reduce_private(dbias_priv, threads, p.dim, o.ddelta_bias, nt);
}

// ------------------------------------------------------------------------------------------------------------
// float64: scalar version of the same algorithm, one (batch, channel) row per work item
// ------------------------------------------------------------------------------------------------------------
struct Row64 {
  const ScanProblem& p;
  int64_t b, d, g;
  Row64(const ScanProblem& p_, int64_t item) : p(p_), b(item / p_.dim), d(item % p_.dim), g(d / (p_.dim / p_.groups)) {}
  int64_t row() const { return (b * p.dim + d) * p.len; }
  int64_t bc(int64_t n) const { return ((b * p.groups + g) * p.dstate + n) * p.len; }
  double raw(int64_t t) const {
    const double* bias = static_cast<const double*>(p.delta_bias);
    return static_cast<const double*>(p.delta)[row() + t] + (bias ? bias[d] : 0.0);
  }
  double dt(int64_t t) const {
    double x = raw(t);
    return (p.softplus && x <= 20.0) ? std::log1p(std::exp(x)) : x;
  }
  double u(int64_t t) const { return static_cast<const double*>(p.u)[row() + t]; }
  double A(int64_t n) const { return static_cast<const double*>(p.A)[d * p.dstate + n]; }
  double Bm(int64_t n, int64_t t) const { return static_cast<const double*>(p.B)[bc(n) + t]; }
  double Cm(int64_t n, int64_t t) const { return static_cast<const double*>(p.C)[bc(n) + t]; }
  double Dv() const { return p.D ? static_cast<const double*>(p.D)[d] : 0.0; }
  const double* z() const { return p.z ? static_cast<const double*>(p.z) + row() : nullptr; }
};

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

void forward_f64(const ScanProblem& p, double* out, double* last_state, double* checkpoints) {
  const int64_t n_chunks = (p.len + kChunk - 1) / kChunk, N = p.dstate;
  parallel_items(p.batch * p.dim, p.num_threads, [&](int64_t item, int) {
    const Row64 r(p, item);
    std::vector<double> h(N, 0.0);
    for (int64_t t = 0; t < p.len; ++t) {
      if (checkpoints && t % kChunk == 0)
        std::copy(h.begin(), h.end(), checkpoints + (item * n_chunks + t / kChunk) * N);
      const double dt = r.dt(t), x = dt * r.u(t);
      double y = 0.0;
      for (int64_t n = 0; n < N; ++n) {
        h[n] = std::exp(dt * r.A(n)) * h[n] + x * r.Bm(n, t);
        y += r.Cm(n, t) * h[n];
      }
      y += r.Dv() * r.u(t);
      if (r.z()) y *= r.z()[t] * sigmoid(r.z()[t]);
      out[r.row() + t] = y;
    }
    if (last_state) std::copy(h.begin(), h.end(), last_state + item * N);
  });
}

void backward_f64(const ScanProblem& p, const double* checkpoints, const double* dout, double* du, double* ddelta,
                  double* dA, double* dB, double* dC, double* dD, double* dz, double* ddelta_bias) {
  const int64_t n_chunks = (p.len + kChunk - 1) / kChunk, N = p.dstate, L = p.len;
  const int64_t threads = num_threads_for(p, p.batch * p.dim);
  const int64_t bc_size = p.batch * p.groups * N * L;
  std::vector<double> dB_priv(threads * bc_size, 0.0), dC_priv(threads * bc_size, 0.0),
      dA_priv(threads * p.dim * N, 0.0), dD_priv(threads * p.dim, 0.0), dbias_priv(threads * p.dim, 0.0);
  parallel_items(p.batch * p.dim, static_cast<int>(threads), [&](int64_t item, int tid) {
    const Row64 r(p, item);
    std::vector<double> hist((kChunk + 1) * N), carry(N, 0.0);
    for (int64_t k = n_chunks - 1; k >= 0; --k) {
      const int64_t t0 = k * kChunk, n = std::min(kChunk, L - t0);
      std::copy(checkpoints + (item * n_chunks + k) * N, checkpoints + (item * n_chunks + k + 1) * N, hist.begin());
      for (int64_t t = 0; t < n; ++t) {
        const double dt = r.dt(t0 + t), x = dt * r.u(t0 + t);
        for (int64_t s = 0; s < N; ++s)
          hist[(t + 1) * N + s] = std::exp(dt * r.A(s)) * hist[t * N + s] + x * r.Bm(s, t0 + t);
      }
      for (int64_t t = n - 1; t >= 0; --t) {
        const int64_t tt = t0 + t;
        const double dt = r.dt(tt), uv = r.u(tt);
        double dyv = dout[r.row() + tt];
        if (r.z()) {
          const double zv = r.z()[tt], sg = sigmoid(zv);
          double y = r.Dv() * uv;
          for (int64_t s = 0; s < N; ++s) y += r.Cm(s, tt) * hist[(t + 1) * N + s];
          dz[r.row() + tt] = dyv * y * sg * (1.0 + zv * (1.0 - sg));
          dyv *= zv * sg;
        }
        double gdt = 0.0, gb = 0.0;
        for (int64_t s = 0; s < N; ++s) {
          const double e = std::exp(dt * r.A(s));
          const double g = dyv * r.Cm(s, tt) + carry[s];
          const double q = g * e * hist[t * N + s];
          gdt += r.A(s) * q;
          dA_priv[tid * p.dim * N + r.d * N + s] += dt * q;
          gb += g * r.Bm(s, tt);
          dB_priv[tid * bc_size + r.bc(s) + tt] += g * dt * uv;
          dC_priv[tid * bc_size + r.bc(s) + tt] += dyv * hist[(t + 1) * N + s];
          carry[s] = g * e;
        }
        gdt += uv * gb;
        const double raw = r.raw(tt);
        if (p.softplus && raw <= 20.0) gdt *= sigmoid(raw);
        ddelta[r.row() + tt] = gdt;
        du[r.row() + tt] = dt * gb + r.Dv() * dyv;
        dD_priv[tid * p.dim + r.d] += dyv * uv;
        dbias_priv[tid * p.dim + r.d] += gdt;
      }
    }
  });
  reduce_private(dB_priv, threads, bc_size, dB, p.num_threads);
  reduce_private(dC_priv, threads, bc_size, dC, p.num_threads);
  reduce_private(dA_priv, threads, p.dim * N, dA, p.num_threads);
  reduce_private(dD_priv, threads, p.dim, dD, p.num_threads);
  reduce_private(dbias_priv, threads, p.dim, ddelta_bias, p.num_threads);
}

// ------------------------------------------------------------------------------------------------------------
// Path gather for scan orders: out[b, k, c, m] = src[b, k?, c, index[k, m]] (0 where index >= src_len),
// optionally summed over k. One work item is a (b, c) row, so a source row is read from cache K times.
// ------------------------------------------------------------------------------------------------------------
template <class T>
void gather_paths(const T* src, int64_t batch, int64_t paths, int64_t channels, int64_t src_len, bool shared_source,
                  const int64_t* index, int64_t out_len, bool sum_paths, T* out, int n_threads) {
  const int64_t src_path = shared_source ? 0 : channels * src_len;
  const int64_t src_batch = shared_source ? channels * src_len : paths * channels * src_len;
  const int64_t out_path = sum_paths ? 0 : channels * out_len;
  const int64_t out_batch = sum_paths ? channels * out_len : paths * channels * out_len;
  // Paths that read only row[0..src_len] (src_len = the zero token) gather from a zero-padded copy of the row,
  // a branch-free loop the compiler turns into vector gathers; others (rare) test every index.
  std::vector<char> bounded(paths);
  for (int64_t k = 0; k < paths; ++k)
    bounded[k] = *std::max_element(index + k * out_len, index + (k + 1) * out_len) <= src_len;
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(n_threads, batch * channels));
  std::vector<std::vector<T>> rows(threads, std::vector<T>(src_len + 1, T(0)));
  parallel_items(batch * channels, static_cast<int>(threads), [&](int64_t item, int tid) {
    const int64_t b = item / channels, c = item % channels;
    T* dst_row = out + b * out_batch + c * out_len;
    T* padded = rows[tid].data();
    for (int64_t k = 0; k < paths; ++k) {
      const T* row = src + b * src_batch + k * src_path + c * src_len;
      const int64_t* idx = index + k * out_len;
      T* dst = dst_row + k * out_path;
      const bool add = sum_paths && k > 0;
      if (bounded[k]) {
        if (k == 0 || !shared_source) std::copy(row, row + src_len, padded);
        if (add) {
          for (int64_t m = 0; m < out_len; ++m) dst[m] += padded[idx[m]];
        } else {
          for (int64_t m = 0; m < out_len; ++m) dst[m] = padded[idx[m]];
        }
      } else {
        for (int64_t m = 0; m < out_len; ++m) {
          const T v = idx[m] < src_len ? row[idx[m]] : T(0);
          dst[m] = add ? dst[m] + v : v;
        }
      }
    }
  });
}

}  // namespace

extern "C" {

// ABI of this file; bump when ScanProblem or a signature changes (the loader checks it).
int ssm_abi_version() { return 2; }

// dtype: 0 = float32, 1 = float64. Returns 0, or -1 for an unknown dtype.
int ssm_gather_paths(int dtype, const void* src, int64_t batch, int64_t paths, int64_t channels, int64_t src_len,
                     int shared_source, const int64_t* index, int64_t out_len, int sum_paths, void* out,
                     int n_threads) {
  if (dtype == 0)
    gather_paths(static_cast<const float*>(src), batch, paths, channels, src_len, shared_source, index, out_len,
                 sum_paths, static_cast<float*>(out), n_threads);
  else if (dtype == 1)
    gather_paths(static_cast<const double*>(src), batch, paths, channels, src_len, shared_source, index, out_len,
                 sum_paths, static_cast<double*>(out), n_threads);
  else
    return -1;
  return 0;
}
int64_t ssm_checkpoint_interval() { return kChunk; }

int ssm_forward_f32(const ScanProblem* p, float* out, float* last_state, float* checkpoints) {
  forward_f32(*p, out, last_state, checkpoints);
  return 0;
}

int ssm_backward_f32(const ScanProblem* p, const float* checkpoints, const float* dout, float* du, float* ddelta,
                     float* dA, float* dB, float* dC, float* dD, float* dz, float* ddelta_bias) {
  backward_f32(*p, checkpoints, BackwardOut{dout, du, ddelta, dA, dB, dC, dD, dz, ddelta_bias});
  return 0;
}

int ssm_forward_f64(const ScanProblem* p, double* out, double* last_state, double* checkpoints) {
  forward_f64(*p, out, last_state, checkpoints);
  return 0;
}

int ssm_backward_f64(const ScanProblem* p, const double* checkpoints, const double* dout, double* du, double* ddelta,
                     double* dA, double* dB, double* dC, double* dD, double* dz, double* ddelta_bias) {
  backward_f64(*p, checkpoints, dout, du, ddelta, dA, dB, dC, dD, dz, ddelta_bias);
  return 0;
}

}  // extern "C"
