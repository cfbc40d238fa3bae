// Dispatch wrapper for ops/matvec.h; the per-target kernels are in ops/matvec-inl.h.
// Highway's SVE targets are not compiled in this file: matvec-inl.h keeps its accumulators in
// arrays of vectors (register blocking), and SVE vectors are sizeless types, which cannot be array
// elements. On SVE CPUs this kernel runs its NEON code: dispatch picks among the targets compiled
// in the calling file (hwy/targets.h, ChosenTarget::GetIndex). docs/arm.md
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)

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
                  size_t row_begin, size_t row_end, ops::MatVecSource source) {
  MatVecImpl(w, x, bias, y, row_begin, row_end, source);
}

}  // namespace recur::HWY_NAMESPACE
// With one target compiled (NEON alone on aarch64, above), HWY_DYNAMIC_DISPATCH is a static call
// to HWY_NAMESPACE::MatVecTarget looked up from recur::ops.
namespace recur::ops::HWY_NAMESPACE {
using recur::HWY_NAMESPACE::MatVecTarget;
}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
// The per-target functions live in recur::HWY_NAMESPACE; exporting from namespace recur keeps
// lookup away from recur::ops::HWY_NAMESPACE, which other ops -inl.h files define.
namespace recur {
HWY_EXPORT(MatVecTarget);
}  // namespace recur

namespace recur::ops {


void MatVec(const WeightView& w, const float* x, const float* bias, float* y, size_t row_begin,
            size_t row_end, MatVecSource source) {
  if (row_begin >= row_end) return;
  HWY_DYNAMIC_DISPATCH(MatVecTarget)(w, x, bias, y, row_begin, row_end, source);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
