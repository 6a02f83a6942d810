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
// x >= width reads 0 with zero gradient (as torchvision's deform_conv2d CPU kernel). Positions are computed
// in the data type (float32 or float64).

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
  int64_t padded_width() const { return width + 2; }
  int64_t padded_plane() const { return (height + 2) * (width + 2); }
};

// Every channel is read from a copy with a border of one zero pixel, (height + 2, width + 2): the four neighbours
// of any position with -1 < y < height, -1 < x < width then lie inside the copy, so a sample is one base index
// plus fixed steps and neighbours outside the map read the zero border (no per-neighbour tests).
template <class T>
std::vector<T> zero_bordered(const DeformGeometry& g, const T* x, int n_threads) {
  const int64_t wp = g.padded_width(), plane = g.padded_plane();
  std::vector<T> out(g.batch * g.channels * plane, T(0));
  ssm::parallel_items(g.batch * g.channels, n_threads, [&](int64_t bc, int) {
    for (int64_t r = 0; r < g.height; ++r)
      std::copy(x + (bc * g.height + r) * g.width, x + (bc * g.height + r + 1) * g.width,
                out.data() + bc * plane + (r + 1) * wp + 1);
  });
  return out;
}

// Bilinear set-up of the samples of one tap at n output pixels (structure of arrays, vectorisable). Neighbour n of
// sample l sits at base[l] + {0, 1, wp, wp + 1} in the bordered copy with weight w[n][l]. A position outside
// (-1, height) x (-1, width) (or NaN) gets base 0 and fy = fx = 0: its only weight falls on the zero corner of the
// border, so it reads 0, its gradients to the offset and mask are 0 and what it scatters lands on the border.
template <class T>
struct TapSamples {
  std::vector<int32_t> base;
  std::vector<T> fy, fx, w[4];
  explicit TapSamples(int64_t n) : base(n), fy(n), fx(n), w{std::vector<T>(n), std::vector<T>(n),
                                                             std::vector<T>(n), std::vector<T>(n)} {}

  // Entries first + l, l < n, from positions (y0 + dy[l], x0 + l * step + dx[l]): one output row of one tap.
  void setup(const DeformGeometry& g, T y0, T x0, T step, const T* __restrict dy, const T* __restrict dx,
             int64_t first, int64_t n) {
    const T height = T(g.height), width = T(g.width);
    const int32_t wp = static_cast<int32_t>(g.padded_width());
    int32_t* __restrict out_base = base.data() + first;
    T* __restrict out_fy = fy.data() + first;
    T* __restrict out_fx = fx.data() + first;
    T *__restrict w0 = w[0].data() + first, *__restrict w1 = w[1].data() + first;
    T *__restrict w2 = w[2].data() + first, *__restrict w3 = w[3].data() + first;
    for (int64_t l = 0; l < n; ++l) {  // branch-free so that it vectorises
      const T y = y0 + dy[l], x = x0 + T(static_cast<int32_t>(l)) * step + dx[l];
      const bool inside = (y > T(-1)) & (y < height) & (x > T(-1)) & (x < width);
      const T yf = std::floor(inside ? y : T(0)), xf = std::floor(inside ? x : T(0));
      const T ly = inside ? y - yf : T(0), lx = inside ? x - xf : T(0);
      out_base[l] = inside ? (static_cast<int32_t>(yf) + 1) * wp + static_cast<int32_t>(xf) + 1 : 0;
      out_fy[l] = ly;
      out_fx[l] = lx;
      w0[l] = (T(1) - ly) * (T(1) - lx);
      w1[l] = (T(1) - ly) * lx;
      w2[l] = ly * (T(1) - lx);
      w3[l] = ly * lx;
    }
  }
};

// Items: (batch, output row). Each item writes its row of every column, for all channels.
template <class T>
void im2col(const DeformGeometry& g, const T* x, const T* offset, const T* mask, T* columns, int n_threads) {
  const int64_t taps = g.taps(), pixels = g.pixels(), per_group = g.channels / g.groups;
  const int64_t plane = g.padded_plane();
  const int32_t wp = static_cast<int32_t>(g.padded_width());
  const std::vector<T> padded = zero_bordered(g, x, n_threads);
  ssm::parallel_items(g.batch * g.out_h, n_threads, [&](int64_t item, int) {
    const int64_t b = item / g.out_h, p = item % g.out_h;
    TapSamples<T> s(g.out_w);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      for (int64_t k = 0; k < taps; ++k) {
        const int64_t gk = (b * g.groups + grp) * taps + k, row = p * g.out_w;
        const T* dy = offset + 2 * gk * pixels + row;
        s.setup(g, T(p * g.sh - g.ph + (k / g.kw) * g.dh), T(-g.pw + (k % g.kw) * g.dw), T(g.sw), dy, dy + pixels, 0,
                g.out_w);
        if (mask)
          for (auto& w : s.w)
            for (int64_t q = 0; q < g.out_w; ++q) w[q] *= mask[gk * pixels + row + q];
        const int32_t* __restrict base = s.base.data();
        const T *__restrict w0 = s.w[0].data(), *__restrict w1 = s.w[1].data();
        const T *__restrict w2 = s.w[2].data(), *__restrict w3 = s.w[3].data();
        for (int64_t c = grp * per_group; c < (grp + 1) * per_group; ++c) {
          const T* __restrict src = padded.data() + (b * g.channels + c) * plane;
          T* __restrict dst = columns + ((b * g.channels + c) * taps + k) * pixels + row;
          for (int64_t q = 0; q < g.out_w; ++q) {
            const int32_t n = base[q];
            dst[q] = w0[q] * src[n] + w1[q] * src[n + 1] + w2[q] * src[n + wp] + w3[q] * src[n + wp + 1];
          }
        }
      }
    }
  });
}

// Items: (batch, offset group). Each item owns the channels of its group (scattered into a private bordered
// buffer, then cropped into grad_x) and its offset/mask gradients, so no two threads write the same memory.
// grad_mask may be null.
template <class T>
void im2col_backward(const DeformGeometry& g, const T* grad_columns, const T* x, const T* offset, const T* mask,
                     T* grad_x, T* grad_offset, T* grad_mask, int n_threads) {
  const int64_t taps = g.taps(), pixels = g.pixels(), per_group = g.channels / g.groups;
  const int64_t wp = g.padded_width(), plane = g.padded_plane();
  const std::vector<T> padded = zero_bordered(g, x, n_threads);
  ssm::parallel_items(g.batch * g.groups, n_threads, [&](int64_t item, int) {
    const int64_t b = item / g.groups, grp = item % g.groups, c0 = grp * per_group;
    TapSamples<T> s(pixels);
    std::vector<T> acc_y(pixels), acc_x(pixels), acc_m(pixels), scale(pixels, T(1));
    std::vector<T> grad_padded(per_group * plane, T(0));
    for (int64_t k = 0; k < taps; ++k) {
      const int64_t gk = item * taps + k;
      const T* dy = offset + 2 * gk * pixels;
      for (int64_t p = 0; p < g.out_h; ++p) {
        const int64_t row = p * g.out_w;
        s.setup(g, T(p * g.sh - g.ph + (k / g.kw) * g.dh), T(-g.pw + (k % g.kw) * g.dw), T(g.sw), dy + row,
                dy + pixels + row, row, g.out_w);
      }
      if (mask) std::copy(mask + gk * pixels, mask + (gk + 1) * pixels, scale.begin());
      std::fill(acc_y.begin(), acc_y.end(), T(0));
      std::fill(acc_x.begin(), acc_x.end(), T(0));
      std::fill(acc_m.begin(), acc_m.end(), T(0));
      for (int64_t c = c0; c < c0 + per_group; ++c) {
        const T* src = padded.data() + (b * g.channels + c) * plane;
        T* dsrc = grad_padded.data() + (c - c0) * plane;
        const T* gcol = grad_columns + ((b * g.channels + c) * taps + k) * pixels;
        for (int64_t l = 0; l < pixels; ++l) {
          const T gc = gcol[l], fy = s.fy[l], fx = s.fx[l];
          const T w0 = s.w[0][l], w1 = s.w[1][l], w2 = s.w[2][l], w3 = s.w[3][l];
          const int32_t n = s.base[l];
          const T v0 = src[n], v1 = src[n + 1], v2 = src[n + wp], v3 = src[n + wp + 1];
          acc_m[l] += gc * (w0 * v0 + w1 * v1 + w2 * v2 + w3 * v3);
          acc_y[l] += gc * ((T(1) - fx) * (v2 - v0) + fx * (v3 - v1));
          acc_x[l] += gc * ((T(1) - fy) * (v1 - v0) + fy * (v3 - v2));
          const T gm = gc * scale[l];
          dsrc[n] += gm * w0;
          dsrc[n + 1] += gm * w1;
          dsrc[n + wp] += gm * w2;
          dsrc[n + wp + 1] += gm * w3;
        }
      }
      T* gy = grad_offset + 2 * gk * pixels;
      T* gx = gy + pixels;
      for (int64_t l = 0; l < pixels; ++l) {
        gy[l] = acc_y[l] * scale[l];
        gx[l] = acc_x[l] * scale[l];
      }
      if (grad_mask) std::copy(acc_m.begin(), acc_m.end(), grad_mask + gk * pixels);
    }
    for (int64_t c = c0; c < c0 + per_group; ++c)
      for (int64_t r = 0; r < g.height; ++r) {
        const T* from = grad_padded.data() + (c - c0) * plane + (r + 1) * wp + 1;
        std::copy(from, from + g.width, grad_x + ((b * g.channels + c) * g.height + r) * g.width);
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
