// Softmax over a row, and the online (streaming) softmax used by attention written as an RNN
// (Highway-dispatched; scalar twins in ops/reference/softmax.h).
//
// Online softmax (MATH.md, "Attention as an RNN"): one query's state over the keys seen so far is
//   m = max_j s_j,   z = sum_j exp(s_j - m),   y = sum_j exp(s_j - m) v_j   (y: [d]),
// and the attention output is y / z. The empty state is m = -inf, z = 0, y = 0 (see
// OnlineSoftmaxReset). Adding a key:  m' = max(m, s); y <- y e^{m - m'} + e^{s - m'} v;
// z <- z e^{m - m'} + e^{s - m'}. Two states over disjoint key sets merge the same way, and the
// merge is associative, so keys can be split across blocks or threads in any way. A key with
// score -inf (masked) leaves the state unchanged.
#pragma once

#include <cstddef>

namespace recur::ops {

// x <- exp(x - max x) / sum exp(x - max x), in place. n == 0 does nothing. Needs at least one
// finite score when n > 0 (all -inf gives NaN, as torch does).  x: [n]
void Softmax(float* x, size_t n);

// x <- x - max x - log(sum exp(x - max x)), in place.  x: [n]
void LogSoftmax(float* x, size_t n);

// Sets the empty state: *m = -inf, *z = 0, y = 0.  y: [d]
void OnlineSoftmaxReset(float* m, float* z, float* y, size_t d);

// Adds one key with score s and value v to the state (m, z, y).  y, v: [d]
void OnlineSoftmaxUpdate(float* m, float* z, float* y, float s, const float* v, size_t d);

// Adds k keys at once: scores s[j] with values v[j * v_stride, + d). One rescale of y for the
// whole block (by the block's max) instead of one per key.  y: [d]; s: [k]; v: [k, v_stride]
void OnlineSoftmaxUpdateBlock(float* m, float* z, float* y, const float* s, const float* v,
                              size_t v_stride, size_t k, size_t d);

// Merges state 2 into state 1: afterwards (m1, z1, y1) is the state over both key sets.
// y1, y2: [d] (y2 may not overlap y1)
void OnlineSoftmaxMerge(float* m1, float* z1, float* y1, float m2, float z2, const float* y2,
                        size_t d);

// out = y / z: the softmax-weighted average of the values. An empty state (z == 0) gives zeros.
// y, out: [d] (out may equal y)
void OnlineSoftmaxOutput(float z, const float* y, float* out, size_t d);

}  // namespace recur::ops
