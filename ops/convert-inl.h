// Per-target conversion code shared by the linear-algebra kernels: loads of f16, bf16 and int8
// data widened to f32 vectors, safe tail loads, and the row converters behind ops/convert.h.
//
// Included once per Highway target (toggle guard below), like every -inl.h in ops/.

// No #pragma once: this header is re-included for every target.
#if defined(RECUR_OPS_CONVERT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_CONVERT_INL_H_
#undef RECUR_OPS_CONVERT_INL_H_
#else
#define RECUR_OPS_CONVERT_INL_H_
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "ops/convert.h"
#include "ops/embedding-inl.h"
#include "ops/types.h"

HWY_BEFORE_NAMESPACE();
namespace recur::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ------------------------------------------------------------------ widening loads

// Lanes(df) f32 values from half bits p: [Lanes(df)] (unaligned is fine).
// Highway 1.0.3's emulated PromoteTo (targets without F16C) turns inf/NaN into finite numbers,
// so this uses the embedding kernel's widening, which decodes the bits itself on those targets.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadF16AsF32(DF df, const uint16_t* HWY_RESTRICT p) {
  return recur::ops::HWY_NAMESPACE::WidenF16(df, p);
}

// Lanes(df) f32 values from bfloat16 bits p: [Lanes(df)]: widen to u32, shift into the top half.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadBF16AsF32(DF df, const uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint16_t, DF> du16;
  const hn::RebindToUnsigned<DF> du32;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
}

// Lanes(df) int8 quants p: [Lanes(df)] as f32 (exact: |q| <= 128).
template <class DF>
HWY_INLINE hn::Vec<DF> LoadI8AsF32(DF df, const int8_t* HWY_RESTRICT p) {
  const hn::Rebind<int8_t, DF> di8;
  const hn::RebindToSigned<DF> di32;
  return hn::ConvertTo(df, hn::PromoteTo(di32, hn::LoadU(di8, p)));
}

// The first n < Lanes(d) elements of p, rest zero, without touching memory past p + n.
// Highway 1.0.3's MaskedLoad is a full aligned load on SSE4 (and for 16-bit lanes on AVX2), so
// tails go through a small zeroed stack copy instead; this runs once per row at most. n is
// clamped to the vector so that no caller can overrun the copy (and GCC, which cannot see the
// contract through the callers, stops warning that it might).
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE hn::Vec<D> LoadTail(D d, const T* HWY_RESTRICT p, size_t n) {
  HWY_ALIGN T buf[hn::MaxLanes(d)] = {};
  std::memcpy(buf, p, HWY_MIN(n, hn::MaxLanes(d)) * sizeof(T));
  return hn::Load(d, buf);
}

template <class DF>
HWY_INLINE hn::Vec<DF> LoadTailF16AsF32(DF df, const uint16_t* HWY_RESTRICT p, size_t n) {
  HWY_ALIGN uint16_t buf[hn::MaxLanes(df)] = {};
  std::memcpy(buf, p, HWY_MIN(n, hn::MaxLanes(df)) * sizeof(uint16_t));
  return LoadF16AsF32(df, buf);
}

template <class DF>
HWY_INLINE hn::Vec<DF> LoadTailBF16AsF32(DF df, const uint16_t* HWY_RESTRICT p, size_t n) {
  HWY_ALIGN uint16_t buf[hn::MaxLanes(df)] = {};
  std::memcpy(buf, p, HWY_MIN(n, hn::MaxLanes(df)) * sizeof(uint16_t));
  return LoadBF16AsF32(df, buf);
}

// Stores the first n < Lanes(d) lanes of v to p without touching p + n and beyond.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void StoreTail(D d, hn::Vec<D> v, T* HWY_RESTRICT p, size_t n) {
  HWY_ALIGN T buf[hn::MaxLanes(d)];
  hn::Store(v, d, buf);
  std::memcpy(p, buf, n * sizeof(T));
}

// ------------------------------------------------------------------ row converters

// in: [n] half bits, out: [n].
inline void F16ToF32RowImpl(const uint16_t* HWY_RESTRICT in, float* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadF16AsF32(df, in + i), df, out + i);
  if (i < n) StoreTail(df, LoadTailF16AsF32(df, in + i, n - i), out + i, n - i);
}

// in: [n] bfloat16 bits, out: [n].
inline void BF16ToF32RowImpl(const uint16_t* HWY_RESTRICT in, float* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadBF16AsF32(df, in + i), df, out + i);
  if (i < n) StoreTail(df, LoadTailBF16AsF32(df, in + i, n - i), out + i, n - i);
}

// quants: [n] with n a multiple of kQ8Block, scales: [n / kQ8Block] as f32, out: [n].
inline void DequantizeQ8RowImpl(const int8_t* HWY_RESTRICT quants, const float* HWY_RESTRICT scales,
                                size_t n, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  for (size_t b = 0; b < n / ops::kQ8Block; ++b) {
    const auto scale = hn::Set(df, scales[b]);
    const size_t base = b * ops::kQ8Block;
    for (size_t i = 0; i < ops::kQ8Block; i += N) {
      hn::StoreU(hn::Mul(LoadI8AsF32(df, quants + base + i), scale), df, out + base + i);
    }
  }
}

// w: [rows, cols], out: [w.cols].
inline void DequantizeRowImpl(const ops::WeightView& w, size_t row, float* HWY_RESTRICT out) {
  const size_t cols = w.cols;
  switch (w.type) {
    case ops::WeightType::kF32:
      std::memcpy(out, static_cast<const float*>(w.data) + row * cols, cols * sizeof(float));
      return;
    case ops::WeightType::kF16:
      F16ToF32RowImpl(static_cast<const uint16_t*>(w.data) + row * cols, out, cols);
      return;
    case ops::WeightType::kBF16:
      BF16ToF32RowImpl(static_cast<const uint16_t*>(w.data) + row * cols, out, cols);
      return;
    case ops::WeightType::kQ8_0: {
      const size_t blocks = cols / ops::kQ8Block;
      const int8_t* quants = static_cast<const int8_t*>(w.data) + row * cols;
      // Scales are widened in chunks so that no row length needs a heap buffer.
      constexpr size_t kChunkBlocks = 64;  // 256 bytes of stack, 2048 columns per chunk.
      float scales[kChunkBlocks];
      for (size_t b0 = 0; b0 < blocks; b0 += kChunkBlocks) {
        const size_t nb = blocks - b0 < kChunkBlocks ? blocks - b0 : kChunkBlocks;
        for (size_t b = 0; b < nb; ++b) scales[b] = ops::Q8Scale(w, row * blocks + b0 + b);
        DequantizeQ8RowImpl(quants + b0 * ops::kQ8Block, scales, nb * ops::kQ8Block,
                            out + b0 * ops::kQ8Block);
      }
      return;
    }
  }
}

}  // namespace recur::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_CONVERT_INL_H_
