// RWKV's WKV state updates (BlinkDL/RWKV-LM, ChatRWKV; docs/rwkv.md), one token at a time, for a
// range of heads. Highway-dispatched and vectorised over the head dimension; scalar twins (double
// accumulation) in ops/reference/wkv.h.
//
// Every head h owns a head_size x head_size block of the state, S_h = state + h * N * N (N the
// head size), row-major. Vectors r, k, v, ... are [n_heads * N], indexed by absolute channel
// (head h's channels are [h N, (h + 1) N)); threads may each take a head range and touch nothing
// outside it.
//
// RWKV-5/6 (S[i][j]: key channel i, value channel j; w and u per key channel):
//   y[j]    = sum_i r[i] * (u[i] k[i] v[j] + S[i][j])
//   S[i][j] = w[i] S[i][j] + k[i] v[j]
// RWKV-5.1's per-head decay and bonus are broadcast over the head's channels by the caller.
//
// RWKV-7, the generalised delta rule (S[i][j]: value channel i, key channel j):
//   sa[i]   = sum_j S[i][j] a[j]
//   S[i][j] = S[i][j] w[j] + sa[i] b[j] + v[i] k[j]
//   y[i]    = sum_j S[i][j] r[j]            (the new S)
// with, in RWKV-7, a = -kk and b = kk * a_gate (kk the normalised key).
#pragma once

#include <cstddef>

namespace recur::ops {

// state: [n_heads, N, N]; r, k, v, w, u, y: [n_heads * N]. y must not alias the inputs.
void Wkv5Step(float* state, const float* r, const float* k, const float* v, const float* w,
              const float* u, size_t head_size, size_t h_begin, size_t h_end, float* y);

// state: [n_heads, N, N]; r, w, k, v, a, b, y: [n_heads * N]. y must not alias the inputs.
void Wkv7Step(float* state, const float* r, const float* w, const float* k, const float* v,
              const float* a, const float* b, size_t head_size, size_t h_begin, size_t h_end,
              float* y);

}  // namespace recur::ops
