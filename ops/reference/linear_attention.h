// Scalar twins of ops/linear_attention.h and ops/rope.h, accumulating in double and rounding once
// per stored value, so tests measure the SIMD kernels' own error.
#pragma once

#include <cstddef>

namespace recur::ops::ref {

// S: [dk, dv]; q, k: [dk]; v, out: [dv]; decay: [dk] or null (decay_scalar).
void LinearAttentionStep(float* S, const float* q, const float* k, const float* v,
                         const float* decay, float decay_scalar, size_t dk, size_t dv, float* out);
// c += a b.  a: [M, K]; b: [K, N]; c: [M, N].
void MatMulAcc(const float* a, size_t a_stride, const float* b, size_t b_stride, float* c,
               size_t c_stride, size_t M, size_t K, size_t N);
// c += a^T b.  a: [K, M]; b: [K, N]; c: [M, N].
void MatTMulAcc(const float* a, size_t a_stride, const float* b, size_t b_stride, float* c,
                size_t c_stride, size_t K, size_t M, size_t N);
// out[i, s] = scale a_i . b_s (causal: s <= i + offset, else 0).
void Scores(const float* a, size_t a_stride, const float* b, size_t b_stride, size_t M, size_t N,
            size_t K, float scale, bool causal, size_t offset, float* out, size_t out_stride);
// out[i, s] = sum_j a[i, j] b[s, j] exp(lg[i, j] - lg[s, j]) for s <= i, else 0.
void GatedScores(const float* a, size_t a_stride, const float* b, size_t b_stride,
                 const float* lg, size_t lg_stride, size_t C, size_t K, float* out,
                 size_t out_stride);
// x: [n_heads, head_dim]; cos, sin: [head_dim / 2].
void ApplyRope(float* x, size_t n_heads, size_t head_dim, const float* cos, const float* sin,
               bool interleaved);

}  // namespace recur::ops::ref
