// Per-target code for ops/hippo_scan.h: every loop is over coefficients with one vector of
// channels per step, so each lane is one channel's memory and no lane ever talks to another.
// For LegS the running prefix sums S (of the old state) and Q (of the new state, for the
// solves) of each channel vector live in scratch rows [d], so a sample is one pass over the n
// coefficient rows; the per-coefficient scalars (s_i, 1 / (1 + l (i+1))) are computed once per
// row and shared by all channel vectors.

#if defined(RECUR_OPS_HIPPO_SCAN_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_HIPPO_SCAN_INL_H_
#undef RECUR_OPS_HIPPO_SCAN_INL_H_
#else
#define RECUR_OPS_HIPPO_SCAN_INL_H_
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "hwy/highway.h"
#include "ops/elementwise-inl.h"
#include "ops/hippo_scan.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Loads `count` channels of a row (count < lanes: the tail, zero-filled).
template <class D>
HWY_INLINE hn::Vec<D> LoadChannels(D d, const float* HWY_RESTRICT p, size_t count) {
  return count == hn::Lanes(d) ? hn::LoadU(d, p) : LoadTail(d, p, count);
}

template <class D>
HWY_INLINE void StoreChannels(D d, hn::Vec<D> v, float* HWY_RESTRICT p, size_t count) {
  if (count == hn::Lanes(d)) {
    hn::StoreU(v, d, p);
  } else {
    SafeBlendedStore(v, hn::FirstN(d, count), d, p);
  }
}

inline HWY_NOINLINE void HippoLegsChunk(float* HWY_RESTRICT state /*[n, dc]*/, size_t n, size_t dc,
                                        const float* HWY_RESTRICT u /*[T, u_stride]*/,
                                        size_t u_stride, size_t T, uint64_t k0, LegsMethod method,
                                        float* HWY_RESTRICT scratch /*[2 (dc + lanes)]*/) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t L = hn::Lanes(d);
  float* HWY_RESTRICT S_row = scratch;                        // [dc] prefix sums of the old state
  float* HWY_RESTRICT Q_row = scratch + dc + kMaxFloatLanes;  // [dc] prefix sums of the new state
  for (size_t t = 0; t < T; ++t) {
    const float* ut = u + t * u_stride;
    const uint64_t k = k0 + t;
    if (k == 0) {
      for (size_t c = 0; c < dc; c += L) {
        const size_t cnt = std::min(L, dc - c);
        StoreChannels(d, LoadChannels(d, ut + c, cnt), state + c, cnt);
        for (size_t i = 1; i < n; ++i) StoreChannels(d, hn::Zero(d), state + i * dc + c, cnt);
      }
      continue;
    }
    const double ikd = 1.0 / static_cast<double>(k);
    const V ik = hn::Set(d, static_cast<float>(ikd));
    const double ld = method == LegsMethod::kBilinear ? 0.5 * ikd : ikd;
    const V lv = hn::Set(d, static_cast<float>(ld));
    const V half_ik = hn::Set(d, static_cast<float>(0.5 * ikd));
    for (size_t c = 0; c < dc; c += L) {
      hn::StoreU(hn::Zero(d), d, S_row + c);
      hn::StoreU(hn::Zero(d), d, Q_row + c);
    }
    for (size_t i = 0; i < n; ++i) {
      const float sf = std::sqrt(2.0f * static_cast<float>(i) + 1.0f);
      const V s = hn::Set(d, sf);
      const V iv = hn::Set(d, static_cast<float>(i));
      const V recip = hn::Set(d, static_cast<float>(1.0 / (1.0 + ld * static_cast<double>(i + 1))));
      float* row = state + i * dc;
      for (size_t c = 0; c < dc; c += L) {
        const size_t cnt = std::min(L, dc - c);
        const V cv = LoadChannels(d, row + c, cnt);
        const V x = LoadChannels(d, ut + c, cnt);
        const V sx = hn::Mul(s, x);
        V z;
        if (method == LegsMethod::kBackward) {
          const V v = hn::MulAdd(ik, sx, cv);
          const V Q = hn::LoadU(d, Q_row + c);
          z = hn::Mul(hn::NegMulAdd(hn::Mul(lv, s), Q, v), recip);
          hn::StoreU(hn::MulAdd(s, z, Q), d, Q_row + c);
        } else {
          const V S = hn::MulAdd(s, cv, hn::LoadU(d, S_row + c));
          hn::StoreU(S, d, S_row + c);
          const V asu = hn::NegMulAdd(s, S, hn::Mul(iv, cv));  // i c_i - s_i S_i
          if (method == LegsMethod::kEuler) {
            z = hn::MulAdd(ik, hn::Add(asu, sx), cv);
          } else {
            const V v = hn::MulAdd(ik, sx, hn::MulAdd(half_ik, asu, cv));
            const V Q = hn::LoadU(d, Q_row + c);
            z = hn::Mul(hn::NegMulAdd(hn::Mul(lv, s), Q, v), recip);
            hn::StoreU(hn::MulAdd(s, z, Q), d, Q_row + c);
          }
        }
        StoreChannels(d, z, row + c, cnt);
      }
    }
  }
}

inline HWY_NOINLINE void HippoDenseChunk(float* HWY_RESTRICT state /*[n, dc]*/, size_t n, size_t dc,
                                         const float* HWY_RESTRICT Abar /*[n, n]*/,
                                         const float* HWY_RESTRICT Bbar /*[n]*/,
                                         const float* HWY_RESTRICT u /*[T, u_stride]*/,
                                         size_t u_stride, size_t T,
                                         float* HWY_RESTRICT scratch /*[n, lanes]*/) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t L = hn::Lanes(d);
  for (size_t t = 0; t < T; ++t) {
    const float* ut = u + t * u_stride;
    for (size_t c = 0; c < dc; c += L) {
      const size_t cnt = std::min(L, dc - c);
      // The old coefficients of this channel vector, since every new one reads all of them.
      for (size_t i = 0; i < n; ++i) {
        hn::Store(LoadChannels(d, state + i * dc + c, cnt), d, scratch + i * L);
      }
      const V x = LoadChannels(d, ut + c, cnt);
      for (size_t r = 0; r < n; ++r) {
        const float* a = Abar + r * n;
        V acc = hn::Mul(hn::Set(d, Bbar[r]), x);
        for (size_t k = 0; k < n; ++k) {
          acc = hn::MulAdd(hn::Set(d, a[k]), hn::Load(d, scratch + k * L), acc);
        }
        StoreChannels(d, acc, state + r * dc + c, cnt);
      }
    }
  }
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_HIPPO_SCAN_INL_H_
