// Per-target code for ops/elementwise.h, plus the vector helpers the other element-wise kernels
// share: the map loop and compensated summation. Include from other -inl.h files inside
// HWY_BEFORE_NAMESPACE()/HWY_AFTER_NAMESPACE() territory like any Highway -inl header.

// Per-target include guard (the toggle pattern of hwy/foreach_target.h).
#if defined(RECUR_OPS_ELEMENTWISE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_ELEMENTWISE_INL_H_
#undef RECUR_OPS_ELEMENTWISE_INL_H_
#else
#define RECUR_OPS_ELEMENTWISE_INL_H_
#endif

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Floats in the widest vector any compiled target has; sizes stack buffers for lane spills.
inline constexpr size_t kMaxFloatLanes = HWY_MAX_BYTES / sizeof(float);

// Loads p[0, count) (count < lanes) into the low lanes with zeros above, reading nothing past
// p + count. Highway 1.0.3's MaskedLoad is a real fault-suppressing masked load only on AVX2 and
// AVX3; on SSE4/SSSE3/EMU128/SCALAR it is an aligned full-vector Load plus a blend, which faults on
// unaligned pointers and reads past the end, so those targets copy the tail to the stack instead.
template <class D>
HWY_INLINE hn::Vec<D> LoadTail(D d, const float* HWY_RESTRICT p, size_t count) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return hn::MaskedLoad(hn::FirstN(d, count), d, p);
#else
  HWY_ALIGN float buf[kMaxFloatLanes] = {};
  std::memcpy(buf, p, count * sizeof(float));
  return hn::Load(d, buf);
#endif
}

// hn::BlendedStore that writes only the lanes whose mask is true and reads nothing. Highway
// 1.0.3's NEON BlendedStore loads the whole vector, blends and stores it all back: it reads and
// rewrites the elements past a row's end, which faults at the end of a page and can undo another
// thread's writes to them. Elsewhere BlendedStore is already exact (masked stores on SVE, AVX2 and
// AVX-512; lane by lane on SSE4, SSSE3, EMU128 and SCALAR). Tails only: once per row at most.
template <class D>
HWY_INLINE void SafeBlendedStore(hn::Vec<D> v, hn::Mask<D> m, D d, hn::TFromD<D>* HWY_RESTRICT p) {
#if HWY_TARGET == HWY_NEON
  const hn::RebindToSigned<D> di;
  HWY_ALIGN hn::TFromD<D> lanes[hn::MaxLanes(d)];
  HWY_ALIGN hn::TFromD<decltype(di)> active[hn::MaxLanes(d)];
  hn::Store(v, d, lanes);
  hn::Store(hn::BitCast(di, hn::VecFromMask(d, m)), di, active);
  for (size_t i = 0; i < hn::Lanes(d); ++i) {
    if (active[i] != 0) p[i] = lanes[i];
  }
#else
  hn::BlendedStore(v, m, d, p);
#endif
}

// out[i] = f(d, x[i]) for i < n. out may equal x. The tail goes through LoadTail (inactive lanes
// read as zero; whatever f makes of them is never stored) and a blended store.
template <class D, class F>
HWY_INLINE void Map1(D d, const float* x /*[n]*/, float* out /*[n]*/, size_t n, F f) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(d, hn::LoadU(d, x + i)), d, out + i);
  if (i < n) {
    const auto m = hn::FirstN(d, n - i);
    SafeBlendedStore(f(d, LoadTail(d, x + i, n - i)), m, d, out + i);
  }
}

// out[i] = f(d, a[i], b[i]) for i < n. out may equal a or b.
template <class D, class F>
HWY_INLINE void Map2(D d, const float* a /*[n]*/, const float* b /*[n]*/, float* out /*[n]*/,
                     size_t n, F f) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(f(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  }
  if (i < n) {
    const auto m = hn::FirstN(d, n - i);
    SafeBlendedStore(f(d, LoadTail(d, a + i, n - i), LoadTail(d, b + i, n - i)), m, d, out + i);
  }
}

// out[i] = f(d, a[i], b[i], c[i]) for i < n. out may equal any input.
template <class D, class F>
HWY_INLINE void Map3(D d, const float* a /*[n]*/, const float* b /*[n]*/, const float* c /*[n]*/,
                     float* out /*[n]*/, size_t n, F f) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(f(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i), hn::LoadU(d, c + i)), d, out + i);
  }
  if (i < n) {
    const auto m = hn::FirstN(d, n - i);
    SafeBlendedStore(
        f(d, LoadTail(d, a + i, n - i), LoadTail(d, b + i, n - i), LoadTail(d, c + i, n - i)), m, d,
        out + i);
  }
}

// One Kahan step: adds v to the running sum s, carrying the rounding error in c (the negative of
// the low-order part lost so far). The true sum is s - c.
template <class V>
HWY_INLINE void KahanAdd(V v, V& s, V& c) {
  const V y = hn::Sub(v, c);
  const V t = hn::Add(s, y);
  c = hn::Sub(hn::Sub(t, s), y);
  s = t;
}

// Adds up the lanes of (s - c) in double so the horizontal step adds no f32 rounding.
template <class D, class V>
HWY_INLINE double LanesSumCompensated(D d, V s, V c) {
  HWY_ALIGN float sums[kMaxFloatLanes];
  HWY_ALIGN float comps[kMaxFloatLanes];
  hn::Store(s, d, sums);
  hn::Store(c, d, comps);
  double total = 0.0;
  for (size_t i = 0; i < hn::Lanes(d); ++i) {
    total += static_cast<double>(sums[i]) - static_cast<double>(comps[i]);
  }
  return total;
}

// Returns sum_i f(d, x[i]) with compensated f32 vector accumulators. Error: a few ulp of
// sum_i |f(x[i])| independent of n (Kahan), where plain f32 accumulation would grow with n / lanes.
// Two independent (sum, compensation) pairs hide part of the 4-add dependency chain of a Kahan
// step.
template <class D, class F>
HWY_INLINE double CompensatedSum(D d, const float* HWY_RESTRICT x /*[n]*/, size_t n, F f) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  V s0 = hn::Zero(d), c0 = hn::Zero(d), s1 = hn::Zero(d), c1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    KahanAdd(f(d, hn::LoadU(d, x + i)), s0, c0);
    KahanAdd(f(d, hn::LoadU(d, x + i + N)), s1, c1);
  }
  for (; i + N <= n; i += N) KahanAdd(f(d, hn::LoadU(d, x + i)), s0, c0);
  if (i < n) {
    const auto m = hn::FirstN(d, n - i);
    // f(0) need not be 0 (e.g. (x - mean)^2), so the inactive lanes are zeroed after f.
    KahanAdd(hn::IfThenElseZero(m, f(d, LoadTail(d, x + i, n - i))), s1, c1);
  }
  return LanesSumCompensated(d, s0, c0) + LanesSumCompensated(d, s1, c1);
}

// The identity transform for CompensatedSum.
struct IdentityOp {
  template <class D, class V>
  HWY_INLINE V operator()(D, V v) const {
    return v;
  }
};

// x -> x * x, for sums of squares.
struct SquareOp {
  template <class D, class V>
  HWY_INLINE V operator()(D, V v) const {
    return hn::Mul(v, v);
  }
};

// Returns the maximum lane of x[0, n); -inf when n == 0.
template <class D>
HWY_INLINE float MaxValueT(D d, const float* HWY_RESTRICT x /*[n]*/, size_t n) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  V m0 = neg_inf, m1 = neg_inf;
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    m0 = hn::Max(m0, hn::LoadU(d, x + i));
    m1 = hn::Max(m1, hn::LoadU(d, x + i + N));
  }
  for (; i + N <= n; i += N) m0 = hn::Max(m0, hn::LoadU(d, x + i));
  if (i < n) {
    const auto m = hn::FirstN(d, n - i);
    m1 = hn::Max(m1, hn::IfThenElse(m, LoadTail(d, x + i, n - i), neg_inf));
  }
  return hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
}

// y[i] += s * x[i] for i < n. y may equal x.
template <class D>
HWY_INLINE void AddScaledT(D d, const float* x /*[n]*/, float s, float* y /*[n]*/, size_t n) {
  Map2(d, x, y, y, n,
       [s](auto d2, auto vx, auto vy) HWY_ATTR { return hn::MulAdd(hn::Set(d2, s), vx, vy); });
}

// ------------------------------ Exported kernels (one dispatch per call)
// `inline` lets several .cc files include this header; HWY_NOINLINE keeps one body per target.

inline HWY_NOINLINE void Add(const float* a /*[n]*/, const float* b /*[n]*/, float* out /*[n]*/,
                             size_t n) {
  Map2(hn::ScalableTag<float>(), a, b, out, n,
       [](auto, auto va, auto vb) HWY_ATTR { return hn::Add(va, vb); });
}

inline HWY_NOINLINE void Mul(const float* a /*[n]*/, const float* b /*[n]*/, float* out /*[n]*/,
                             size_t n) {
  Map2(hn::ScalableTag<float>(), a, b, out, n,
       [](auto, auto va, auto vb) HWY_ATTR { return hn::Mul(va, vb); });
}

inline HWY_NOINLINE void Scale(const float* x /*[n]*/, float s, float* out /*[n]*/, size_t n) {
  Map1(hn::ScalableTag<float>(), x, out, n,
       [s](auto d, auto v) HWY_ATTR { return hn::Mul(v, hn::Set(d, s)); });
}

inline HWY_NOINLINE void AddScaled(const float* x /*[n]*/, float s, float* y /*[n]*/, size_t n) {
  AddScaledT(hn::ScalableTag<float>(), x, s, y, n);
}

inline HWY_NOINLINE float Dot(const float* HWY_RESTRICT a /*[n]*/,
                              const float* HWY_RESTRICT b /*[n]*/, size_t n) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  // Four accumulators cover the FMA latency (4 cycles on Zen 4) at one FMA per cycle, enough for
  // an L1-resident dot product without growing the tail code.
  V s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), s1);
    s2 = hn::MulAdd(hn::LoadU(d, a + i + 2 * N), hn::LoadU(d, b + i + 2 * N), s2);
    s3 = hn::MulAdd(hn::LoadU(d, a + i + 3 * N), hn::LoadU(d, b + i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  if (i < n) s1 = hn::MulAdd(LoadTail(d, a + i, n - i), LoadTail(d, b + i, n - i), s1);
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
}

inline HWY_NOINLINE float Sum(const float* HWY_RESTRICT x /*[n]*/, size_t n) {
  return static_cast<float>(CompensatedSum(hn::ScalableTag<float>(), x, n, IdentityOp()));
}

inline HWY_NOINLINE float MaxValue(const float* HWY_RESTRICT x /*[n]*/, size_t n) {
  return MaxValueT(hn::ScalableTag<float>(), x, n);
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_ELEMENTWISE_INL_H_
