#include "ops/reference/elementwise.h"

#include <limits>

namespace recur::ops::ref {

void Add(const float* a, const float* b, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void Mul(const float* a, const float* b, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

void Scale(const float* x, float s, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = s * x[i];
}

void AddScaled(const float* x, float s, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += s * x[i];
}

float Dot(const float* a, const float* b, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

float Sum(const float* x, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += x[i];
  return static_cast<float>(sum);
}

float MaxValue(const float* x, size_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

}  // namespace recur::ops::ref
