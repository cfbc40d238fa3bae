// Per-target code for ops/embedding.h: row widening for each weight type. The conversions are
// local to this file on purpose (ops/convert.h has its own), so the two can change separately.

#if defined(RECUR_OPS_EMBEDDING_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_EMBEDDING_INL_H_
#undef RECUR_OPS_EMBEDDING_INL_H_
#else
#define RECUR_OPS_EMBEDDING_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "ops/elementwise-inl.h"
#include "ops/types.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Widens half-precision bits to f32 (exact: every f16 is an f32), including subnormals, inf, NaN.
// AVX2/AVX3 have F16C (vcvtph2ps). Elsewhere Highway 1.0.3 emulates PromoteTo but maps exponent 31
// (inf/NaN) to a finite 2^16-scale number, so those targets decode the bits here.
template <class DF>
HWY_INLINE hn::Vec<DF> WidenF16(DF df, const uint16_t* HWY_RESTRICT p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
#else
  const hn::Rebind<uint16_t, DF> du16;
  const hn::RebindToUnsigned<DF> du32;
  const hn::RebindToSigned<DF> di32;
  using VU = hn::Vec<decltype(du32)>;
  const VU bits = hn::PromoteTo(du32, hn::LoadU(du16, p));
  const VU sign = hn::ShiftLeft<16>(hn::And(bits, hn::Set(du32, 0x8000u)));
  const VU exponent = hn::And(hn::ShiftRight<10>(bits), hn::Set(du32, 0x1Fu));
  const VU mantissa = hn::And(bits, hn::Set(du32, 0x3FFu));
  const VU mantissa32 = hn::ShiftLeft<13>(mantissa);
  // Rebias 15 -> 127 for normal numbers; exponent 31 becomes 255 (inf, NaN keeps its payload).
  const VU normal = hn::Or(hn::ShiftLeft<23>(hn::Add(exponent, hn::Set(du32, 112u))), mantissa32);
  const VU inf_nan = hn::Or(hn::Set(du32, 0x7F800000u), mantissa32);
  // Subnormal (and zero): mantissa * 2^-24, exact in f32.
  const VU subnormal = hn::BitCast(
      du32, hn::Mul(hn::ConvertTo(df, hn::BitCast(di32, mantissa)), hn::Set(df, 1.0f / 16777216)));
  const VU magnitude =
      hn::IfThenElse(hn::Eq(exponent, hn::Zero(du32)), subnormal,
                     hn::IfThenElse(hn::Eq(exponent, hn::Set(du32, 31u)), inf_nan, normal));
  return hn::BitCast(df, hn::Or(magnitude, sign));
#endif
}

// Widens bfloat16 bits to f32: the bits are the top half of an f32 (exact).
template <class DF>
HWY_INLINE hn::Vec<DF> WidenBF16(DF df, const uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint16_t, DF> du16;
  const hn::RebindToUnsigned<DF> du32;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
}

// Converts n 16-bit values with `widen`, the partial last vector through a zeroed stack copy so
// nothing past in + n is read (Highway 1.0.3 has no fault-free masked load of 16-bit lanes on
// every target).
template <class DF, class Widen>
HWY_INLINE void WidenRow(DF df, const uint16_t* HWY_RESTRICT in /*[n]*/,
                         float* HWY_RESTRICT out /*[n]*/, size_t n, Widen widen) {
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(widen(df, in + i), df, out + i);
  if (i < n) {
    HWY_ALIGN uint16_t buf[kMaxFloatLanes] = {};
    std::memcpy(buf, in + i, (n - i) * sizeof(uint16_t));
    SafeBlendedStore(widen(df, buf), hn::FirstN(df, n - i), df, out + i);
  }
}

// q8_0: out = scale[b] * quant for each block b of kQ8Block values. n is a multiple of kQ8Block.
// Vectors are capped at kQ8Block lanes so a block is always a whole number of vectors.
HWY_INLINE void DequantizeQ8Row(const int8_t* HWY_RESTRICT quants /*[n]*/,
                                const void* HWY_RESTRICT scales /*[n / kQ8Block]*/,
                                ScaleType scale_type, float* HWY_RESTRICT out /*[n]*/, size_t n) {
  const hn::CappedTag<float, kQ8Block> df;
  const hn::Rebind<int8_t, decltype(df)> di8;
  const hn::RebindToSigned<decltype(df)> di32;
  const hn::CappedTag<float, 1> d1;
  const size_t N = hn::Lanes(df);
  for (size_t b = 0; b < n / kQ8Block; ++b) {
    float scale;
    if (scale_type == ScaleType::kF32) {
      std::memcpy(&scale, static_cast<const float*>(scales) + b, sizeof(float));
    } else {
      // One lane of the same exact f16 widening the rows use.
      scale = hn::GetLane(WidenF16(d1, static_cast<const uint16_t*>(scales) + b));
    }
    const auto vscale = hn::Set(df, scale);
    for (size_t i = b * kQ8Block; i < (b + 1) * kQ8Block; i += N) {
      const auto q = hn::ConvertTo(df, hn::PromoteTo(di32, hn::LoadU(di8, quants + i)));
      hn::StoreU(hn::Mul(q, vscale), df, out + i);
    }
  }
}

// out = row `row` of the table as f32.
HWY_INLINE void GatherRowT(const WeightView& table /*[vocab, d]*/, size_t row,
                           float* HWY_RESTRICT out /*[d]*/) {
  const hn::ScalableTag<float> df;
  const size_t cols = table.cols;
  switch (table.type) {
    case WeightType::kF32:
      std::memcpy(out, static_cast<const float*>(table.data) + row * cols, cols * sizeof(float));
      break;
    case WeightType::kF16:
      WidenRow(df, static_cast<const uint16_t*>(table.data) + row * cols, out, cols,
               [](auto d, const uint16_t* p) HWY_ATTR { return WidenF16(d, p); });
      break;
    case WeightType::kBF16:
      WidenRow(df, static_cast<const uint16_t*>(table.data) + row * cols, out, cols,
               [](auto d, const uint16_t* p) HWY_ATTR { return WidenBF16(d, p); });
      break;
    case WeightType::kQ8_0: {
      const size_t blocks = cols / kQ8Block;
      const size_t scale_bytes = table.scale_type == ScaleType::kF16 ? 2 : 4;
      DequantizeQ8Row(static_cast<const int8_t*>(table.data) + row * cols,
                      static_cast<const uint8_t*>(table.scales) + row * blocks * scale_bytes,
                      table.scale_type, out, cols);
      break;
    }
  }
}

// ------------------------------ Exported kernels (one dispatch per call)
// `inline` lets several .cc files include this header; HWY_NOINLINE keeps one body per target.

inline HWY_NOINLINE void GatherRows(const WeightView& table /*[vocab, d]*/,
                                    const int32_t* HWY_RESTRICT ids /*[count]*/, size_t count,
                                    float* HWY_RESTRICT out /*[count, d]*/) {
  for (size_t t = 0; t < count; ++t) {
    GatherRowT(table, static_cast<size_t>(ids[t]), out + t * table.cols);
  }
}

inline HWY_NOINLINE void GatherRow(const WeightView& table /*[vocab, d]*/, size_t row,
                                   float* HWY_RESTRICT out /*[d]*/) {
  GatherRowT(table, row, out);
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_EMBEDDING_INL_H_
