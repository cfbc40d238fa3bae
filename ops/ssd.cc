// Dispatch wrappers for ops/ssd.h; the per-target code is in ops/ssd-inl.h.
#include "ops/ssd.h"

#include <algorithm>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/ssd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/ssd-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(SsdStep);
HWY_EXPORT(SsdChunkGram);
HWY_EXPORT(SsdChunkScan);

namespace {

constexpr size_t Round16(size_t n) { return (n + 15) / 16 * 16; }

[[maybe_unused]] bool ValidDims(const SsdDims& dims) {
  return dims.n_groups > 0 && dims.n_heads % dims.n_groups == 0;
}

}  // namespace

size_t SsdChunkLength(size_t T, size_t chunk) { return std::max<size_t>(1, std::min(chunk, T)); }

size_t SsdGramItems(const SsdDims& dims, size_t T, size_t chunk) {
  const size_t L = SsdChunkLength(T, chunk);
  return dims.n_groups * ((T + L - 1) / L);
}

size_t SsdGramFloats(const SsdDims& dims, size_t T, size_t chunk) {
  const size_t L = SsdChunkLength(T, chunk);
  return SsdGramItems(dims, T, chunk) * L * L;
}

size_t SsdScanScratchFloats(const SsdDims& dims, size_t T, size_t chunk) {
  // Must match the layout at the top of SsdChunkScan in ops/ssd-inl.h.
  const size_t L = SsdChunkLength(T, chunk);
  return Round16(dims.d_state * dims.head_dim) + Round16(kSsdRowBlock * L) +
         Round16(L * dims.head_dim) + 5 * Round16(L);
}

void SsdStep(const SsdDims& dims, const SsdInputs& in, float* state, float* y, size_t head_begin,
             size_t head_end) {
  if (head_begin >= head_end) return;
  HWY_DASSERT(ValidDims(dims) && head_end <= dims.n_heads);
  HWY_DYNAMIC_DISPATCH(SsdStep)(dims, in, state, y, head_begin, head_end);
}

void SsdChunkGram(const SsdDims& dims, const SsdInputs& in, size_t T, size_t chunk,
                  size_t item_begin, size_t item_end, float* gram) {
  if (T == 0 || item_begin >= item_end) return;
  HWY_DASSERT(ValidDims(dims) && item_end <= SsdGramItems(dims, T, chunk));
  HWY_DYNAMIC_DISPATCH(SsdChunkGram)(dims, in, T, chunk, item_begin, item_end, gram);
}

void SsdChunkScan(const SsdDims& dims, const SsdInputs& in, size_t T, size_t chunk,
                  const float* gram, float* state, float* y, size_t y_stride, size_t head_begin,
                  size_t head_end, float* scratch) {
  if (T == 0 || head_begin >= head_end) return;
  HWY_DASSERT(ValidDims(dims) && head_end <= dims.n_heads);
  HWY_DYNAMIC_DISPATCH(SsdChunkScan)
  (dims, in, T, chunk, gram, state, y, y_stride, head_begin, head_end, scratch);
}

size_t SsdPrefillScratchFloats(const SsdDims& dims, size_t T, size_t chunk) {
  return Round16(SsdGramFloats(dims, T, chunk)) + SsdScanScratchFloats(dims, T, chunk);
}

void SsdPrefill(const SsdDims& dims, const SsdInputs& in, size_t T, size_t chunk, float* state,
                float* y, size_t y_stride, float* scratch) {
  if (T == 0) return;
  float* gram = scratch;
  SsdChunkGram(dims, in, T, chunk, 0, SsdGramItems(dims, T, chunk), gram);
  SsdChunkScan(dims, in, T, chunk, gram, state, y, y_stride, 0, dims.n_heads,
               scratch + Round16(SsdGramFloats(dims, T, chunk)));
}

}  // namespace recur::ops
#endif  // HWY_ONCE
