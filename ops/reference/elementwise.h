// Scalar twins of ops/elementwise.h: plain loops, reductions in double, for tests to compare with.
#pragma once

#include <cstddef>

namespace recur::ops::ref {

void Add(const float* a, const float* b, float* out, size_t n);  // a, b, out: [n]
void Mul(const float* a, const float* b, float* out, size_t n);  // a, b, out: [n]
void Scale(const float* x, float s, float* out, size_t n);       // x, out: [n]
void AddScaled(const float* x, float s, float* y, size_t n);     // x, y: [n]; y += s * x
float Dot(const float* a, const float* b, size_t n);             // a, b: [n]; double sum
float Sum(const float* x, size_t n);                             // x: [n]; double sum
float MaxValue(const float* x, size_t n);                        // x: [n]; -inf if n == 0

}  // namespace recur::ops::ref
