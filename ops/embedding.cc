// Dispatch wrappers for ops/embedding.h; the per-target code is in ops/embedding-inl.h.
#include "ops/embedding.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/embedding.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/embedding-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(GatherRow);
HWY_EXPORT(GatherRows);

void GatherRow(const WeightView& table, size_t row, float* out) {
  HWY_DYNAMIC_DISPATCH(GatherRow)(table, row, out);
}

void GatherRows(const WeightView& table, const int32_t* ids, size_t count, float* out) {
  HWY_DYNAMIC_DISPATCH(GatherRows)(table, ids, count, out);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
