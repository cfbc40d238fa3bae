#include "ops/reference/matvec_ref.h"

#include "ops/convert.h"

namespace recur::ops::ref {

void MatVec(const WeightView& w, const float* x, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  for (size_t r = row_begin; r < row_end; ++r) {
    double sum = bias != nullptr ? static_cast<double>(bias[r]) : 0.0;
    for (size_t c = 0; c < w.cols; ++c) {
      sum += static_cast<double>(WeightAt(w, r, c)) * static_cast<double>(x[c]);
    }
    y[r] = static_cast<float>(sum);
  }
}

}  // namespace recur::ops::ref
