#include "ops/reference/linear_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace recur::ops::ref {

void LinearAttentionStep(float* S, const float* q, const float* k, const float* v,
                         const float* decay, float decay_scalar, size_t dk, size_t dv,
                         float* out) {
  std::vector<double> acc(dv, 0.0);
  for (size_t j = 0; j < dk; ++j) {
    const double a = decay != nullptr ? decay[j] : decay_scalar;
    for (size_t c = 0; c < dv; ++c) {
      const float s = static_cast<float>(a * S[j * dv + c] + static_cast<double>(k[j]) * v[c]);
      S[j * dv + c] = s;
      acc[c] += static_cast<double>(q[j]) * s;
    }
  }
  for (size_t c = 0; c < dv; ++c) out[c] = static_cast<float>(acc[c]);
}

void MatMulAcc(const float* a, size_t a_stride, const float* b, size_t b_stride, float* c,
               size_t c_stride, size_t M, size_t K, size_t N) {
  for (size_t i = 0; i < M; ++i) {
    for (size_t n = 0; n < N; ++n) {
      double s = c[i * c_stride + n];
      for (size_t k = 0; k < K; ++k) s += static_cast<double>(a[i * a_stride + k]) * b[k * b_stride + n];
      c[i * c_stride + n] = static_cast<float>(s);
    }
  }
}

void MatTMulAcc(const float* a, size_t a_stride, const float* b, size_t b_stride, float* c,
                size_t c_stride, size_t K, size_t M, size_t N) {
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < N; ++n) {
      double s = c[m * c_stride + n];
      for (size_t k = 0; k < K; ++k) s += static_cast<double>(a[k * a_stride + m]) * b[k * b_stride + n];
      c[m * c_stride + n] = static_cast<float>(s);
    }
  }
}

void Scores(const float* a, size_t a_stride, const float* b, size_t b_stride, size_t M, size_t N,
            size_t K, float scale, bool causal, size_t offset, float* out, size_t out_stride) {
  for (size_t i = 0; i < M; ++i) {
    const size_t end = causal ? std::min(N, i + offset + 1) : N;
    for (size_t s = 0; s < N; ++s) {
      double dot = 0.0;
      if (s < end) {
        for (size_t k = 0; k < K; ++k) dot += static_cast<double>(a[i * a_stride + k]) * b[s * b_stride + k];
      }
      out[i * out_stride + s] = static_cast<float>(scale * dot);
    }
  }
}

void GatedScores(const float* a, size_t a_stride, const float* b, size_t b_stride,
                 const float* lg, size_t lg_stride, size_t C, size_t K, float* out,
                 size_t out_stride) {
  for (size_t i = 0; i < C; ++i) {
    for (size_t s = 0; s < C; ++s) {
      double dot = 0.0;
      if (s <= i) {
        for (size_t k = 0; k < K; ++k) {
          const double e = std::exp(std::min(
              0.0, static_cast<double>(lg[i * lg_stride + k]) - lg[s * lg_stride + k]));
          dot += static_cast<double>(a[i * a_stride + k]) * b[s * b_stride + k] * e;
        }
      }
      out[i * out_stride + s] = static_cast<float>(dot);
    }
  }
}

void ApplyRope(float* x, size_t n_heads, size_t head_dim, const float* cos, const float* sin,
               bool interleaved) {
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    for (size_t i = 0; i < half; ++i) {
      const size_t ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
      const double a = xh[ia], b = xh[ib];
      xh[ia] = static_cast<float>(a * cos[i] - b * sin[i]);
      xh[ib] = static_cast<float>(b * cos[i] + a * sin[i]);
    }
  }
}

}  // namespace recur::ops::ref
