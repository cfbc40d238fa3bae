// Element-wise arithmetic and reductions over float vectors (Highway-dispatched).
//
// Every function dispatches once per call to the best SIMD target and walks the whole range; the
// tail is handled with masked loads and stores, so no element past n is read or written. Scalar
// twins live in ops/reference/elementwise.h.
//
// Aliasing: an output may be the very same pointer as an input (out == a gives a += b); partial
// overlap is not allowed.
#pragma once

#include <cstddef>

namespace recur::ops {

// out[i] = a[i] + b[i].  a, b, out: [n]
void Add(const float* a, const float* b, float* out, size_t n);

// out[i] = a[i] * b[i].  a, b, out: [n]
void Mul(const float* a, const float* b, float* out, size_t n);

// out[i] = s * x[i].  x, out: [n]
void Scale(const float* x, float s, float* out, size_t n);

// y[i] += s * x[i] (axpy; fused multiply-add where the target has FMA).  x, y: [n]
void AddScaled(const float* x, float s, float* y, size_t n);

// Returns sum_i a[i] * b[i], accumulated in four f32 vector accumulators (fast: this is the inner
// loop of attention scores). Worst-case relative error (relative to sum_i |a[i] b[i]|) is about
// (n / (4 * lanes) + log2(lanes) + 2) * 2^-24.  a, b: [n]
float Dot(const float* a, const float* b, size_t n);

// Returns sum_i x[i] with Kahan-compensated f32 vector accumulators, combined in double: the error
// is a few ulp of sum_i |x[i]| whatever n is.  x: [n]
float Sum(const float* x, size_t n);

// Returns max_i x[i]; -infinity when n == 0. NaN inputs give an unspecified result.  x: [n]
float MaxValue(const float* x, size_t n);

}  // namespace recur::ops
