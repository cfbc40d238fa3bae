// Kernels of attention written as an RNN (MATH.md, "Attention as an RNN"): the per-head matrix
// state of linear attention / retention / GLA, in a one-token Step form, and the small dense
// products its chunkwise (prefill) form is made of (Highway-dispatched; scalar twins in
// ops/reference/linear_attention.h). The softmax-attention block uses Scores for q . k.
//
// One head's state is S: [dk, dv] (row j belongs to key dimension j). A token with key k, value v
// and per-key-dimension decay a (a_j in [0, 1]) does
//   S[j, :] = a_j S[j, :] + k_j v,      out = S^T q = sum_j q_j S[j, :]   (the new S).
// No decay is a = 1; RetNet's fixed decay is a_j = g_h for every j; GLA's gate is a data-dependent
// a_j per token.
#pragma once

#include <cstddef>

namespace recur::ops {

// One token of one head. decay: [dk] per-key-dimension multipliers, or null to use decay_scalar
// for every row. out may not overlap the state.
// S: [dk, dv]; q, k: [dk]; v, out: [dv].
void LinearAttentionStep(float* S, const float* q, const float* k, const float* v,
                         const float* decay, float decay_scalar, size_t dk, size_t dv, float* out);

// c += a b.  a: [M, K] (row stride a_stride); b: [K, N] (b_stride); c: [M, N] (c_stride).
void MatMulAcc(const float* a, size_t a_stride, const float* b, size_t b_stride, float* c,
               size_t c_stride, size_t M, size_t K, size_t N);

// c += a^T b.  a: [K, M] (a_stride); b: [K, N] (b_stride); c: [M, N] (c_stride).
void MatTMulAcc(const float* a, size_t a_stride, const float* b, size_t b_stride, float* c,
                size_t c_stride, size_t K, size_t M, size_t N);

// out[i, s] = scale * (a_i . b_s) for i < M, s < N; with `causal`, only s <= i + offset is
// computed and the rest of the row is set to 0.
// a: [M, K] (a_stride); b: [N, K] (b_stride); out: [M, N] (out_stride).
void Scores(const float* a, size_t a_stride, const float* b, size_t b_stride, size_t M, size_t N,
            size_t K, float scale, bool causal, size_t offset, float* out, size_t out_stride);

// GLA's intra-chunk scores with per-key-dimension decay: for s <= i,
//   out[i, s] = sum_j a[i, j] b[s, j] exp(lg[i, j] - lg[s, j]),
// where lg holds cumulative log decays (non-increasing along i), so every exponent is <= 0 and
// nothing overflows whatever the decays; out[i, s] = 0 for s > i.
// a, b, lg: [C, K] (strides a_stride, b_stride, lg_stride); out: [C, C] (out_stride).
void GatedScores(const float* a, size_t a_stride, const float* b, size_t b_stride,
                 const float* lg, size_t lg_stride, size_t C, size_t K, float* out,
                 size_t out_stride);

}  // namespace recur::ops
