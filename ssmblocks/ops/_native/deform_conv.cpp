// Native CPU modulated deformable convolution (DCNv2): the bilinear im2col and its backward, float32 and float64.
// The matrix product with the weight is left to torch (ssmblocks/ops/deform_conv.py).
//
// Layouts (all contiguous, row-major); G offset groups split the C channels into consecutive parts of C / G:
//   x, grad_x              : (batch, C, height, width)
//   offset, grad_offset    : (batch, G, taps, 2, out_h, out_w)   -- (dy, dx) of tap k = i * kw + j
//   mask, grad_mask        : (batch, G, taps, out_h, out_w)      -- may be null: no modulation
//   columns, grad_columns  : (batch, C, taps, out_h * out_w)
// Tap k of output pixel (p, q) samples x bilinearly at (p * sh - ph + i * dh + dy, q * sw - pw + j * dw + dx),
// times the mask. A neighbour outside the map reads 0; a position with y <= -1, y >= height, x <= -1 or
// x >= width reads 0 with zero gradient (as torchvision's deform_conv2d CPU kernel).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "parallel.h"

namespace {

struct DeformGeometry {
  int64_t batch, channels, height, width, groups, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w;
  int64_t taps() const { return kh * kw; }
  int64_t pixels() const { return out_h * out_w; }
};

// Bilinear set-up of one sample: the four neighbours (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1).
template <class T>
struct Sample {
  int64_t idx[4];  // flat indices into one channel, clamped into the map (read only where valid)
  T valid[4];      // 1 where the neighbour lies inside the map, else 0
  T w[4];          // bilinear weights, 0 where not valid
  T fy, fx;        // fractional parts of the position
};

template <class T>
Sample<T> setup(T y, T x, int64_t height, int64_t width) {
  Sample<T> s{};
  if (!(y > T(-1) && y < T(height) && x > T(-1) && x < T(width))) return s;  // all zero (also for NaN)
  const T y0f = std::floor(y), x0f = std::floor(x);
  const int64_t y0 = static_cast<int64_t>(y0f), x0 = static_cast<int64_t>(x0f);
  s.fy = y - y0f;
  s.fx = x - x0f;
  const T wy[2] = {T(1) - s.fy, s.fy}, wx[2] = {T(1) - s.fx, s.fx};
  for (int n = 0; n < 4; ++n) {
    const int64_t yy = y0 + n / 2, xx = x0 + n % 2;
    const bool inside = yy >= 0 && yy < height && xx >= 0 && xx < width;
    s.idx[n] = inside ? yy * width + xx : 0;
    s.valid[n] = inside ? T(1) : T(0);
    s.w[n] = inside ? wy[n / 2] * wx[n % 2] : T(0);
  }
  return s;
}

// Position of tap (i, j) at output pixel (p, q) before the offset.
struct Base {
  int64_t y, x;
};
inline Base base(const DeformGeometry& g, int64_t tap, int64_t p, int64_t q) {
  return {p * g.sh - g.ph + (tap / g.kw) * g.dh, q * g.sw - g.pw + (tap % g.kw) * g.dw};
}

// Items: (batch, output row). Each item writes its row of every column, for all channels.
template <class T>
void im2col(const DeformGeometry& g, const T* x, const T* offset, const T* mask, T* columns, int n_threads) {
  const int64_t taps = g.taps(), pixels = g.pixels(), plane = g.height * g.width, per_group = g.channels / g.groups;
  ssm::parallel_items(g.batch * g.out_h, n_threads, [&](int64_t item, int) {
    const int64_t b = item / g.out_h, p = item % g.out_h;
    std::vector<Sample<T>> row(g.out_w);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      for (int64_t k = 0; k < taps; ++k) {
        const int64_t gk = (b * g.groups + grp) * taps + k;
        const T* dy = offset + (2 * gk) * pixels + p * g.out_w;
        const T* dx = dy + pixels;
        const T* m = mask ? mask + gk * pixels + p * g.out_w : nullptr;
        for (int64_t q = 0; q < g.out_w; ++q) {
          const Base at = base(g, k, p, q);
          row[q] = setup(T(at.y) + dy[q], T(at.x) + dx[q], g.height, g.width);
          if (m)
            for (T& w : row[q].w) w *= m[q];
        }
        for (int64_t c = grp * per_group; c < (grp + 1) * per_group; ++c) {
          const T* src = x + (b * g.channels + c) * plane;
          T* dst = columns + ((b * g.channels + c) * taps + k) * pixels + p * g.out_w;
          for (int64_t q = 0; q < g.out_w; ++q) {
            const Sample<T>& s = row[q];
            dst[q] = s.w[0] * src[s.idx[0]] + s.w[1] * src[s.idx[1]] + s.w[2] * src[s.idx[2]] +
                     s.w[3] * src[s.idx[3]];
          }
        }
      }
    }
  });
}

// Items: (batch, offset group). Each item owns the channels of its group in grad_x and its offset/mask gradients,
// so no two threads write the same memory. grad_x must be zeroed by the caller; grad_mask may be null.
template <class T>
void im2col_backward(const DeformGeometry& g, const T* grad_columns, const T* x, const T* offset, const T* mask,
                     T* grad_x, T* grad_offset, T* grad_mask, int n_threads) {
  const int64_t taps = g.taps(), pixels = g.pixels(), plane = g.height * g.width, per_group = g.channels / g.groups;
  ssm::parallel_items(g.batch * g.groups, n_threads, [&](int64_t item, int) {
    const int64_t b = item / g.groups, grp = item % g.groups;
    std::vector<Sample<T>> samples(pixels);
    std::vector<T> acc_y(pixels), acc_x(pixels), acc_m(pixels);
    for (int64_t k = 0; k < taps; ++k) {
      const int64_t gk = item * taps + k;
      const T* dy = offset + (2 * gk) * pixels;
      const T* dx = dy + pixels;
      const T* m = mask ? mask + gk * pixels : nullptr;
      for (int64_t l = 0; l < pixels; ++l) {
        const Base at = base(g, k, l / g.out_w, l % g.out_w);
        samples[l] = setup(T(at.y) + dy[l], T(at.x) + dx[l], g.height, g.width);
      }
      std::fill(acc_y.begin(), acc_y.end(), T(0));
      std::fill(acc_x.begin(), acc_x.end(), T(0));
      std::fill(acc_m.begin(), acc_m.end(), T(0));
      for (int64_t c = grp * per_group; c < (grp + 1) * per_group; ++c) {
        const T* src = x + (b * g.channels + c) * plane;
        T* dsrc = grad_x + (b * g.channels + c) * plane;
        const T* gcol = grad_columns + ((b * g.channels + c) * taps + k) * pixels;
        for (int64_t l = 0; l < pixels; ++l) {
          const Sample<T>& s = samples[l];
          const T gc = gcol[l];
          T v[4];
          for (int n = 0; n < 4; ++n) v[n] = s.valid[n] * src[s.idx[n]];
          acc_m[l] += gc * (s.w[0] * v[0] + s.w[1] * v[1] + s.w[2] * v[2] + s.w[3] * v[3]);
          acc_y[l] += gc * ((T(1) - s.fx) * (v[2] - v[0]) + s.fx * (v[3] - v[1]));
          acc_x[l] += gc * ((T(1) - s.fy) * (v[1] - v[0]) + s.fy * (v[3] - v[2]));
          const T gm = m ? gc * m[l] : gc;
          for (int n = 0; n < 4; ++n) dsrc[s.idx[n]] += gm * s.w[n];
        }
      }
      T* gy = grad_offset + (2 * gk) * pixels;
      T* gx = gy + pixels;
      for (int64_t l = 0; l < pixels; ++l) {
        const T scale = m ? m[l] : T(1);
        gy[l] = acc_y[l] * scale;
        gx[l] = acc_x[l] * scale;
      }
      if (grad_mask) std::copy(acc_m.begin(), acc_m.end(), grad_mask + gk * pixels);
    }
  });
}

}  // namespace

extern "C" {

// dtype: 0 = float32, 1 = float64. Return 0, or -1 for an unknown dtype.
int ssm_deform_im2col(int dtype, const DeformGeometry* g, const void* x, const void* offset, const void* mask,
                      void* columns, int n_threads) {
  if (dtype == 0)
    im2col(*g, static_cast<const float*>(x), static_cast<const float*>(offset), static_cast<const float*>(mask),
           static_cast<float*>(columns), n_threads);
  else if (dtype == 1)
    im2col(*g, static_cast<const double*>(x), static_cast<const double*>(offset), static_cast<const double*>(mask),
           static_cast<double*>(columns), n_threads);
  else
    return -1;
  return 0;
}

int ssm_deform_im2col_backward(int dtype, const DeformGeometry* g, const void* grad_columns, const void* x,
                               const void* offset, const void* mask, void* grad_x, void* grad_offset,
                               void* grad_mask, int n_threads) {
  if (dtype == 0)
    im2col_backward(*g, static_cast<const float*>(grad_columns), static_cast<const float*>(x),
                    static_cast<const float*>(offset), static_cast<const float*>(mask), static_cast<float*>(grad_x),
                    static_cast<float*>(grad_offset), static_cast<float*>(grad_mask), n_threads);
  else if (dtype == 1)
    im2col_backward(*g, static_cast<const double*>(grad_columns), static_cast<const double*>(x),
                    static_cast<const double*>(offset), static_cast<const double*>(mask),
                    static_cast<double*>(grad_x), static_cast<double*>(grad_offset),
                    static_cast<double*>(grad_mask), n_threads);
  else
    return -1;
  return 0;
}

}  // extern "C"
