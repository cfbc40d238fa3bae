// Per-target code for ops/selective_scan.h. One (channel, token) update walks the channel's state
// row a vector of states at a time: exp(dt A) through Highway's vector exponential (llama.cpp
// calls scalar expf per element here), the state update as one multiply-add, and C . h
// accumulated in a vector; four channels' vectors are then reduced together.

#if defined(RECUR_OPS_SELECTIVE_SCAN_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_SELECTIVE_SCAN_INL_H_
#undef RECUR_OPS_SELECTIVE_SCAN_INL_H_
#else
#define RECUR_OPS_SELECTIVE_SCAN_INL_H_
#endif

#include <algorithm>
#include <cstddef>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/elementwise-inl.h"
#include "ops/selective_scan.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Channels the chunk form advances together through time: one 64-byte line of x, dt and y per
// token, while B and C's rows are reused from L1 by every channel of the block and the block's
// state rows (16 x d_state floats, 1 KiB for d_state 16) stay in L1 across the whole chunk.
inline constexpr size_t kScanChannelBlock = 16;

// exp(dt A) for dt A <= 0 (dt >= 0 and A < 0 always hold in Mamba). hn::Exp is valid on
// [-FLT_MAX, 104]; clamping the argument at 0 keeps it there whatever a caller passes, for one
// instruction instead of ExpV's overflow and NaN selects (~10% of the kernel). A NaN dt still
// propagates through the dt x B term.
template <class D, class V>
HWY_INLINE V Decay(D d, V dta) {
  return hn::Exp(d, hn::Min(dta, hn::Zero(d)));
}

// One channel, one token: updates h[0, n_state) in place and returns the per-lane partial sums of
// C . h (new h), left unreduced so that ScanGroup can reduce four channels at once.
// h, a, b, c: [n_state].
template <class D>
HWY_INLINE hn::Vec<D> ScanChannel(D d, float* HWY_RESTRICT h, const float* HWY_RESTRICT a,
                                  const float* HWY_RESTRICT b, const float* HWY_RESTRICT c,
                                  size_t n_state, float dt, float x) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V vdt = hn::Set(d, dt);
  // dt * x once per channel instead of dt * B per state: Bbar x = (dt x) B.
  const V vdtx = hn::Set(d, dt * x);
  V acc = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n_state; i += N) {
    const V decay = Decay(d, hn::Mul(vdt, hn::LoadU(d, a + i)));
    const V hv = hn::MulAdd(decay, hn::LoadU(d, h + i), hn::Mul(vdtx, hn::LoadU(d, b + i)));
    hn::StoreU(hv, d, h + i);
    acc = hn::MulAdd(hv, hn::LoadU(d, c + i), acc);
  }
  if (i < n_state) {
    // Lanes past n_state load as zero: their h stays 0 (exp(0) * 0 + 0) and their C is 0, so they
    // add nothing to the dot product and are never stored.
    const size_t n = n_state - i;
    const V decay = Decay(d, hn::Mul(vdt, LoadTail(d, a + i, n)));
    const V hv = hn::MulAdd(decay, LoadTail(d, h + i, n), hn::Mul(vdtx, LoadTail(d, b + i, n)));
    SafeBlendedStore(hv, hn::FirstN(d, n), d, h + i);
    acc = hn::MulAdd(hv, LoadTail(d, c + i, n), acc);
  }
  return acc;
}

// out[k] = the sum of the lanes of the k-th vector, for four vectors at once: two rounds of
// interleave-and-add leave, in every 128-bit block, one partial sum per vector, and the blocks are
// then added in order. A separate SumOfLanes per channel costs about 30% of the whole kernel at
// d_state 16. Each sum's additions (and their order) depend on nothing but its own vector, so a
// channel's result is the same whichever channels share the call.
template <class D, class V>
HWY_INLINE void SumOfLanes4(D d, V v0, V v1, V v2, V v3, float* HWY_RESTRICT out /*[4]*/) {
#if HWY_TARGET == HWY_SCALAR
  out[0] = hn::GetLane(v0);
  out[1] = hn::GetLane(v1);
  out[2] = hn::GetLane(v2);
  out[3] = hn::GetLane(v3);
#else
  const hn::Repartition<uint64_t, D> du64;
  // Per block: [v0_0 + v0_2, v1_0 + v1_2, v0_1 + v0_3, v1_1 + v1_3], and the same for v2, v3.
  const V s01 = hn::Add(hn::InterleaveLower(d, v0, v1), hn::InterleaveUpper(d, v0, v1));
  const V s23 = hn::Add(hn::InterleaveLower(d, v2, v3), hn::InterleaveUpper(d, v2, v3));
  // Per block: [sum v0, sum v1, sum v2, sum v3].
  const auto w01 = hn::BitCast(du64, s01);
  const auto w23 = hn::BitCast(du64, s23);
  const V sums = hn::Add(hn::BitCast(d, hn::InterleaveLower(du64, w01, w23)),
                         hn::BitCast(d, hn::InterleaveUpper(du64, w01, w23)));
  HWY_ALIGN float blocks[kMaxFloatLanes];
  hn::Store(sums, d, blocks);
  const hn::Full128<float> d4;
  auto total = hn::Load(d4, blocks);
  for (size_t k = 4; k < hn::Lanes(d); k += 4) total = hn::Add(total, hn::Load(d4, blocks + k));
  hn::StoreU(total, d4, out);
#endif
}

// Channels [c, c + count) (count <= 4) of one token: updates their state rows and writes
// y = C . h + D x. x and dt are read before y is written, so y may alias either.
// state: [d_inner, n_state]; x, dt, y: [d_inner] (absolute channel indices); A: [d_inner, n_state];
// b, cv: [n_state].
template <class D>
HWY_INLINE void ScanGroup(D d, size_t c, size_t count, float* HWY_RESTRICT state, const float* x,
                          const float* dt, const float* HWY_RESTRICT A, const float* HWY_RESTRICT b,
                          const float* HWY_RESTRICT cv, const float* HWY_RESTRICT D_skip,
                          size_t n_state, float* y) {
  float xs[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (size_t g = 0; g < count; ++g) xs[g] = x[c + g];
  const auto channel = [&](size_t g) HWY_ATTR {
    return g < count ? ScanChannel(d, state + (c + g) * n_state, A + (c + g) * n_state, b, cv,
                                   n_state, dt[c + g], xs[g])
                     : hn::Zero(d);
  };
  const auto v0 = channel(0);
  const auto v1 = channel(1);
  const auto v2 = channel(2);
  const auto v3 = channel(3);
  HWY_ALIGN float dots[4];
  SumOfLanes4(d, v0, v1, v2, v3, dots);
  for (size_t g = 0; g < count; ++g) {
    // y for one channel from the dot product and the skip term.
    y[c + g] = D_skip != nullptr ? dots[g] + D_skip[c + g] * xs[g] : dots[g];
  }
}

// ------------------------------ Exported kernels (one dispatch per call)

inline HWY_NOINLINE void SelectiveScanStep(
    float* HWY_RESTRICT state /*[d_inner, d_state]*/, const float* x /*[d_inner]*/,
    const float* dt /*[d_inner]*/, const float* HWY_RESTRICT A /*[d_inner, d_state]*/,
    const float* HWY_RESTRICT B /*[d_state]*/, const float* HWY_RESTRICT C /*[d_state]*/,
    const float* HWY_RESTRICT D /*[d_inner]*/, size_t d_state, size_t c_begin, size_t c_end,
    float* y /*[d_inner]*/) {
  const hn::ScalableTag<float> d;
  for (size_t c = c_begin; c < c_end; c += 4) {
    ScanGroup(d, c, std::min<size_t>(4, c_end - c), state, x, dt, A, B, C, D, d_state, y);
  }
}

inline HWY_NOINLINE void SelectiveScanChunk(
    float* HWY_RESTRICT state /*[d_inner, d_state]*/, const float* x /*[T, x_stride]*/,
    size_t x_stride, const float* dt /*[T, dt_stride]*/, size_t dt_stride, size_t T,
    const float* HWY_RESTRICT A /*[d_inner, d_state]*/,
    const float* HWY_RESTRICT B /*[T, bc_stride]*/, const float* HWY_RESTRICT C /*[T, bc_stride]*/,
    size_t bc_stride, const float* HWY_RESTRICT D /*[d_inner]*/, size_t d_state, size_t c_begin,
    size_t c_end, float* y /*[T, y_stride]*/, size_t y_stride) {
  const hn::ScalableTag<float> d;
  for (size_t c0 = c_begin; c0 < c_end; c0 += kScanChannelBlock) {
    const size_t c1 = std::min(c_end, c0 + kScanChannelBlock);
    for (size_t t = 0; t < T; ++t) {
      for (size_t c = c0; c < c1; c += 4) {
        ScanGroup(d, c, std::min<size_t>(4, c1 - c), state, x + t * x_stride, dt + t * dt_stride, A,
                  B + t * bc_stride, C + t * bc_stride, D, d_state, y + t * y_stride);
      }
    }
  }
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_SELECTIVE_SCAN_INL_H_
