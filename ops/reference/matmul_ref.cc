#include "ops/reference/matmul_ref.h"

#include "ops/reference/matvec_ref.h"

namespace recur::ops::ref {

// Each token is one reference matvec: the matmul is defined as T independent matvecs.
void MatMul(const WeightView& w, const float* X, size_t T, const float* bias, float* Y,
            size_t row_begin, size_t row_end) {
  for (size_t t = 0; t < T; ++t) {
    MatVec(w, X + t * w.cols, bias, Y + t * w.rows, row_begin, row_end);
  }
}

}  // namespace recur::ops::ref
