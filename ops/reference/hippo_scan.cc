#include "ops/reference/hippo_scan.h"

#include <cmath>
#include <vector>

namespace recur::ops::ref {

void HippoLegsChunk(float* state, size_t n, size_t d, const float* u, size_t u_stride, size_t T,
                    uint64_t k0, LegsMethod method) {
  std::vector<double> c(n), z(n);
  for (size_t t = 0; t < T; ++t) {
    const uint64_t k = k0 + t;
    for (size_t ch = 0; ch < d; ++ch) {
      const double x = u[t * u_stride + ch];
      if (k == 0) {
        for (size_t i = 0; i < n; ++i) state[i * d + ch] = i == 0 ? static_cast<float>(x) : 0.0f;
        continue;
      }
      for (size_t i = 0; i < n; ++i) c[i] = state[i * d + ch];
      const double ik = 1.0 / static_cast<double>(k);
      double S = 0.0, Q = 0.0;
      for (size_t i = 0; i < n; ++i) {
        const double s = std::sqrt(2.0 * i + 1);
        S += s * c[i];
        const double asu = static_cast<double>(i) * c[i] - s * S;  // (A_su c)_i
        double l = 0.0, v = 0.0;
        switch (method) {
          case LegsMethod::kEuler:
            z[i] = c[i] + ik * (asu + s * x);
            continue;
          case LegsMethod::kBackward:
            l = ik;
            v = c[i] + ik * s * x;
            break;
          case LegsMethod::kBilinear:
            l = 0.5 * ik;
            v = c[i] + 0.5 * ik * asu + ik * s * x;
            break;
        }
        z[i] = (v - l * s * Q) / (1.0 + l * static_cast<double>(i + 1));
        Q += s * z[i];
      }
      for (size_t i = 0; i < n; ++i) state[i * d + ch] = static_cast<float>(z[i]);
    }
  }
}

void HippoDenseChunk(float* state, size_t n, size_t d, const float* Abar, const float* Bbar,
                     const float* u, size_t u_stride, size_t T) {
  std::vector<double> c(n);
  for (size_t t = 0; t < T; ++t) {
    for (size_t ch = 0; ch < d; ++ch) {
      for (size_t i = 0; i < n; ++i) c[i] = state[i * d + ch];
      for (size_t r = 0; r < n; ++r) {
        double acc = static_cast<double>(Bbar[r]) * u[t * u_stride + ch];
        for (size_t k = 0; k < n; ++k) acc += static_cast<double>(Abar[r * n + k]) * c[k];
        state[r * d + ch] = static_cast<float>(acc);
      }
    }
  }
}

}  // namespace recur::ops::ref
