#include "ops/reference/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace recur::ops::ref {
namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}  // namespace

void Softmax(float* x, size_t n) {
  if (n == 0) return;
  const float max = *std::max_element(x, x + n);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - max);
  for (size_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) - max) / sum);
  }
}

void LogSoftmax(float* x, size_t n) {
  if (n == 0) return;
  const float max = *std::max_element(x, x + n);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - max);
  const double log_sum = std::log(sum);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(x[i] - max - log_sum);
}

void OnlineSoftmaxUpdate(float* m, float* z, float* y, float s, const float* v, size_t d) {
  if (s == kNegInf) return;
  if (*m == kNegInf) {
    *m = s;
    *z = 1.0f;
    std::copy(v, v + d, y);
    return;
  }
  const double m_new = std::max(*m, s);
  const double a = std::exp(*m - m_new);
  const double p = std::exp(s - m_new);
  *m = static_cast<float>(m_new);
  *z = static_cast<float>(*z * a + p);
  for (size_t i = 0; i < d; ++i) y[i] = static_cast<float>(y[i] * a + p * v[i]);
}

void OnlineSoftmaxMerge(float* m1, float* z1, float* y1, float m2, float z2, const float* y2,
                        size_t d) {
  if (m2 == kNegInf) return;
  if (*m1 == kNegInf) {
    *m1 = m2;
    *z1 = z2;
    std::copy(y2, y2 + d, y1);
    return;
  }
  const double m = std::max(*m1, m2);
  const double a1 = std::exp(*m1 - m);
  const double a2 = std::exp(m2 - m);
  *m1 = static_cast<float>(m);
  *z1 = static_cast<float>(*z1 * a1 + z2 * a2);
  for (size_t i = 0; i < d; ++i) y1[i] = static_cast<float>(y1[i] * a1 + y2[i] * a2);
}

}  // namespace recur::ops::ref
