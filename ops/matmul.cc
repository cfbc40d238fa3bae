// Dispatch wrapper for ops/matmul.h; the per-target kernels are in ops/matmul-inl.h.
// Highway's SVE targets are not compiled in this file: matmul-inl.h and matvec-inl.h keep their
// accumulators in arrays of vectors (register blocking), and SVE vectors are sizeless types,
// which cannot be array elements. On SVE CPUs this kernel runs its NEON code: dispatch picks
// among the targets compiled in the calling file (hwy/targets.h, ChosenTarget::GetIndex).
// docs/arm.md
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)

#include "ops/matmul.h"

#include <algorithm>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/matmul-inl.h"

HWY_BEFORE_NAMESPACE();
namespace recur::HWY_NAMESPACE {

// The per-target function the dispatch table points at.
void MatMulTarget(const ops::WeightView& w, const float* X, size_t T, const float* bias, float* Y,
                  size_t row_begin, size_t row_end, float* scratch) {
  MatMulImpl(w, X, T, bias, Y, row_begin, row_end, scratch);
}

}  // namespace recur::HWY_NAMESPACE
// With one target compiled (NEON alone on aarch64, above), HWY_DYNAMIC_DISPATCH is a static call
// to HWY_NAMESPACE::MatMulTarget looked up from recur::ops.
namespace recur::ops::HWY_NAMESPACE {
using recur::HWY_NAMESPACE::MatMulTarget;
}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
// The per-target functions live in recur::HWY_NAMESPACE; exporting from namespace recur keeps
// lookup away from recur::ops::HWY_NAMESPACE, which other ops -inl.h files define.
namespace recur {
HWY_EXPORT(MatMulTarget);
}  // namespace recur

namespace recur::ops {


size_t MatMulScratchFloats(size_t cols) {
  const size_t slice = std::min(cols, matmul_detail::kSliceCols);
  return matmul_detail::kMaxPanelRows * std::max<size_t>(slice, 1) +
         matmul_detail::kScratchAlignFloats;
}

void MatMul(const WeightView& w, const float* X, size_t T, const float* bias, float* Y,
            size_t row_begin, size_t row_end, float* scratch) {
  if (T == 0 || row_begin >= row_end) return;
  if (scratch == nullptr) {
    // One buffer per thread, grown to the largest request seen and then reused: no heap
    // allocation per call once a thread has warmed up.
    thread_local std::vector<float> buffer;
    const size_t need = MatMulScratchFloats(w.cols);
    if (buffer.size() < need) buffer.resize(need);
    scratch = buffer.data();
  }
  HWY_DYNAMIC_DISPATCH(MatMulTarget)(w, X, T, bias, Y, row_begin, row_end, scratch);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
