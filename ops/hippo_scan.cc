// Dispatch wrappers for ops/hippo_scan.h; the per-target code is in ops/hippo_scan-inl.h.
#include "ops/hippo_scan.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/hippo_scan.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/hippo_scan-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(HippoLegsChunk);
HWY_EXPORT(HippoDenseChunk);

// A bound on every target's float lanes (SVE's 2048-bit maximum), for scratch sizes and
// alignment: HWY_MAX_BYTES here describes only the static target.
constexpr size_t kMaxLanes = 64;

size_t HippoScanScratchFloats(size_t n, size_t d) {
  // Two prefix rows padded by a vector, or n rows of one vector (the widest target's lanes).
  constexpr size_t kLanes = kMaxLanes;
  const size_t legs = 2 * (d + kLanes);
  const size_t dense = n * kLanes + kLanes;  // + alignment slack
  return legs > dense ? legs : dense;
}

void HippoLegsChunk(float* state, size_t n, size_t d, const float* u, size_t u_stride, size_t T,
                    uint64_t k0, LegsMethod method, float* scratch) {
  if (n == 0 || d == 0 || T == 0) return;
  HWY_DYNAMIC_DISPATCH(HippoLegsChunk)(state, n, d, u, u_stride, T, k0, method, scratch);
}

void HippoDenseChunk(float* state, size_t n, size_t d, const float* Abar, const float* Bbar,
                     const float* u, size_t u_stride, size_t T, float* scratch) {
  if (n == 0 || d == 0 || T == 0) return;
  // The per-vector copy of the old state is read with aligned loads.
  constexpr size_t kAlign = kMaxLanes * sizeof(float);
  const uintptr_t p = reinterpret_cast<uintptr_t>(scratch);
  float* aligned = reinterpret_cast<float*>((p + kAlign - 1) / kAlign * kAlign);
  HWY_DYNAMIC_DISPATCH(HippoDenseChunk)(state, n, d, Abar, Bbar, u, u_stride, T, aligned);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
