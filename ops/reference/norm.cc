#include "ops/reference/norm.h"

#include <algorithm>
#include <cmath>

namespace recur::ops::ref {
namespace {

double SiLUD(double v) { return v / (1.0 + std::exp(-v)); }

}  // namespace

void RMSNorm(const float* x, const float* weight, float eps, float* out, size_t n) {
  if (n == 0) return;
  double sum_sq = 0.0;
  for (size_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const double rstd = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(x[i] * rstd * (weight != nullptr ? weight[i] : 1.0));
  }
}

void LayerNorm(const float* x, const float* weight, const float* bias, float eps, float* out,
               size_t n) {
  if (n == 0) return;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double sum_sq = 0.0;
  for (size_t i = 0; i < n; ++i) sum_sq += (x[i] - mean) * (x[i] - mean);
  const double rstd = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
  for (size_t i = 0; i < n; ++i) {
    const double w = weight != nullptr ? weight[i] : 1.0;
    const double b = bias != nullptr ? bias[i] : 0.0;
    out[i] = static_cast<float>((x[i] - mean) * rstd * w + b);
  }
}

void GroupNorm(const float* x, size_t groups, size_t group_size, const float* weight,
               const float* bias, float eps, float* out) {
  for (size_t g = 0; g < groups; ++g) {
    const size_t c0 = g * group_size;
    LayerNorm(x + c0, weight != nullptr ? weight + c0 : nullptr,
              bias != nullptr ? bias + c0 : nullptr, eps, out + c0, group_size);
  }
}

void GatedRMSNorm(const float* y, const float* z, const float* weight, size_t group_size, float eps,
                  bool norm_before_gate, float* out, size_t n) {
  if (group_size == 0) group_size = n;
  for (size_t g0 = 0; g0 < n; g0 += group_size) {
    const size_t gs = std::min(group_size, n - g0);
    double sum_sq = 0.0;
    for (size_t i = g0; i < g0 + gs; ++i) {
      const double v = (z != nullptr && !norm_before_gate) ? y[i] * SiLUD(z[i]) : y[i];
      sum_sq += v * v;
    }
    const double rstd = 1.0 / std::sqrt(sum_sq / static_cast<double>(gs) + eps);
    for (size_t i = g0; i < g0 + gs; ++i) {
      const double gate = z != nullptr ? SiLUD(z[i]) : 1.0;
      const double w = weight != nullptr ? weight[i] : 1.0;
      const double v = norm_before_gate ? y[i] * rstd * w * gate : y[i] * gate * rstd * w;
      out[i] = static_cast<float>(v);
    }
  }
}

}  // namespace recur::ops::ref
