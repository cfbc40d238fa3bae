#include "ops/reference/activation.h"

#include <cmath>
#include <numbers>

#include "ops/activation.h"

namespace recur::ops::ref {
namespace {

double SigmoidD(double x) { return 1.0 / (1.0 + std::exp(-x)); }

template <class F>
void MapD(const float* x, float* out, size_t n, F f) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(f(static_cast<double>(x[i])));
}

}  // namespace

float SigmoidScalar(float x) { return static_cast<float>(SigmoidD(x)); }
float SiLUScalar(float x) { return static_cast<float>(x * SigmoidD(x)); }
float SoftplusScalar(float x) {
  return x > kSoftplusThreshold ? x : static_cast<float>(std::log1p(std::exp(double{x})));
}

void Exp(const float* x, float* out, size_t n) {
  MapD(x, out, n, [](double v) { return std::exp(v); });
}
void Sigmoid(const float* x, float* out, size_t n) { MapD(x, out, n, SigmoidD); }
void SiLU(const float* x, float* out, size_t n) {
  MapD(x, out, n, [](double v) { return v * SigmoidD(v); });
}
void Softplus(const float* x, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = SoftplusScalar(x[i]);
}
void Tanh(const float* x, float* out, size_t n) {
  MapD(x, out, n, [](double v) { return std::tanh(v); });
}
void Elu(const float* x, float* out, size_t n) {
  MapD(x, out, n, [](double v) { return v > 0 ? v : std::expm1(v); });
}
void Relu(const float* x, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i] < 0.0f ? 0.0f : x[i];
}
void GeluTanh(const float* x, float* out, size_t n) {
  MapD(x, out, n, [](double v) {
    // 0.5 v (1 + tanh(u)) == v * sigmoid(2 u), written so that negative v does not cancel.
    const double k = std::sqrt(2.0 / std::numbers::pi);
    return v * SigmoidD(2.0 * k * (v + 0.044715 * v * v * v));
  });
}
void GeluErf(const float* x, float* out, size_t n) {
  MapD(x, out, n, [](double v) { return 0.5 * v * (1.0 + std::erf(v / std::numbers::sqrt2)); });
}
void MulSiLU(const float* a, const float* gate, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(a[i] * (g * SigmoidD(g)));
  }
}

}  // namespace recur::ops::ref
