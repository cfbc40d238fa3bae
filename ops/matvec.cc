// Dispatch wrapper for ops/matvec.h; the per-target kernels are in ops/matvec-inl.h.
#include "ops/matvec.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matvec.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/matvec-inl.h"

HWY_BEFORE_NAMESPACE();
namespace recur::HWY_NAMESPACE {

// The per-target function the dispatch table points at.
void MatVecTarget(const ops::WeightView& w, const float* x, const float* bias, float* y,
                  size_t row_begin, size_t row_end) {
  MatVecImpl(w, x, bias, y, row_begin, row_end);
}

}  // namespace recur::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
// The per-target functions live in recur::HWY_NAMESPACE; exporting from namespace recur keeps
// lookup away from recur::ops::HWY_NAMESPACE, which other ops -inl.h files define.
namespace recur {
HWY_EXPORT(MatVecTarget);
}  // namespace recur

namespace recur::ops {


void MatVec(const WeightView& w, const float* x, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  if (row_begin >= row_end) return;
  HWY_DYNAMIC_DISPATCH(MatVecTarget)(w, x, bias, y, row_begin, row_end);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
