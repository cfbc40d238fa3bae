#include "ops/reference/wkv.h"

#include <vector>

namespace recur::ops::ref {

void Wkv5Step(float* state, const float* r, const float* k, const float* v, const float* w,
              const float* u, size_t head_size, size_t h_begin, size_t h_end, float* y) {
  const size_t n = head_size;
  for (size_t h = h_begin; h < h_end; ++h) {
    const size_t c = h * n;
    float* s = state + h * n * n;
    for (size_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (size_t i = 0; i < n; ++i) {
        const double kv = static_cast<double>(k[c + i]) * v[c + j];
        const double sij = s[i * n + j];
        acc += static_cast<double>(r[c + i]) * (static_cast<double>(u[c + i]) * kv + sij);
        s[i * n + j] = static_cast<float>(static_cast<double>(w[c + i]) * sij + kv);
      }
      y[c + j] = static_cast<float>(acc);
    }
  }
}

void Wkv7Step(float* state, const float* r, const float* w, const float* k, const float* v,
              const float* a, const float* b, size_t head_size, size_t h_begin, size_t h_end,
              float* y) {
  const size_t n = head_size;
  for (size_t h = h_begin; h < h_end; ++h) {
    const size_t c = h * n;
    float* s = state + h * n * n;
    for (size_t i = 0; i < n; ++i) {
      float* row = s + i * n;
      double sa = 0.0;
      for (size_t j = 0; j < n; ++j) sa += static_cast<double>(row[j]) * a[c + j];
      double acc = 0.0;
      for (size_t j = 0; j < n; ++j) {
        const double sij = static_cast<double>(row[j]) * w[c + j] + sa * b[c + j] +
                           static_cast<double>(v[c + i]) * k[c + j];
        row[j] = static_cast<float>(sij);
        acc += sij * r[c + j];
      }
      y[c + i] = static_cast<float>(acc);
    }
  }
}

}  // namespace recur::ops::ref
