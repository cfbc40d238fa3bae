#include "ops/reference/matvec_ref.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "ops/convert.h"

namespace recur::ops::ref {
namespace {

// q8_0 weights with x quantized per block of kQ8Block to int16, scale max|x| / 32767 (rounded
// to nearest even), exactly as the vectorised kernel does; false when x is not all finite.
bool MatVecQ8I16(const WeightView& w, const float* x, const float* bias, float* y,
                 size_t row_begin, size_t row_end) {
  const size_t blocks = w.cols / kQ8Block;
  std::vector<int32_t> xq(w.cols);
  std::vector<float> xs(blocks);
  for (size_t b = 0; b < blocks; ++b) {
    float m = 0.0f;
    for (size_t j = 0; j < kQ8Block; ++j) {
      const float v = x[b * kQ8Block + j];
      if (!std::isfinite(v)) return false;
      m = std::fabs(v) > m ? std::fabs(v) : m;
    }
    const float inv = m > 0.0f ? 32767.0f / m : 0.0f;
    xs[b] = m / 32767.0f;
    for (size_t j = 0; j < kQ8Block; ++j) {
      const float scaled = x[b * kQ8Block + j] * inv;
      xq[b * kQ8Block + j] = static_cast<int32_t>(std::nearbyint(scaled));
    }
  }
  for (size_t r = row_begin; r < row_end; ++r) {
    double sum = bias != nullptr ? static_cast<double>(bias[r]) : 0.0;
    const int8_t* q = static_cast<const int8_t*>(w.data) + r * w.cols;
    for (size_t b = 0; b < blocks; ++b) {
      int64_t dot = 0;
      for (size_t j = 0; j < kQ8Block; ++j) {
        dot += int64_t{q[b * kQ8Block + j]} * xq[b * kQ8Block + j];
      }
      const double scale = Q8Scale(w, r * blocks + b);
      sum += scale * static_cast<double>(xs[b]) * static_cast<double>(dot);
    }
    y[r] = static_cast<float>(sum);
  }
  return true;
}

}  // namespace

void MatVec(const WeightView& w, const float* x, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  if (w.type == WeightType::kQ8_0 && MatVecQ8I16(w, x, bias, y, row_begin, row_end)) return;
  MatVecF32X(w, x, bias, y, row_begin, row_end);
}

void MatVecF32X(const WeightView& w, const float* x, const float* bias, float* y,
                size_t row_begin, size_t row_end) {
  for (size_t r = row_begin; r < row_end; ++r) {
    double sum = bias != nullptr ? static_cast<double>(bias[r]) : 0.0;
    for (size_t c = 0; c < w.cols; ++c) {
      sum += static_cast<double>(WeightAt(w, r, c)) * static_cast<double>(x[c]);
    }
    y[r] = static_cast<float>(sum);
  }
}

}  // namespace recur::ops::ref
