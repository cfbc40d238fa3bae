// Scalar twins of ops/softmax.h, accumulating in double. Same conventions (in place, empty online
// state m = -inf, z = 0, y = 0).
#pragma once

#include <cstddef>

namespace recur::ops::ref {

void Softmax(float* x, size_t n);     // x: [n]
void LogSoftmax(float* x, size_t n);  // x: [n]

// Online softmax, one key at a time.  y, v: [d]
void OnlineSoftmaxUpdate(float* m, float* z, float* y, float s, const float* v, size_t d);
// Merges state 2 into state 1.  y1, y2: [d]
void OnlineSoftmaxMerge(float* m1, float* z1, float* y1, float m2, float z2, const float* y2,
                        size_t d);

}  // namespace recur::ops::ref
