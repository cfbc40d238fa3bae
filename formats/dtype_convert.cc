#include "formats/dtype_convert.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

namespace recur {
namespace {

// Loads and stores through memcpy so that unaligned pointers are fine.
template <typename T>
T Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
void Store(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

// Rounds a double to float "to odd": truncate toward zero, then set the last bit if anything
// was dropped. A later round-to-nearest-even into a format with at least two fewer significand
// bits then gives the correctly rounded result, which a plain double -> float -> half path does
// not (the first rounding can land exactly on a halfway point of the second).
float F64ToF32RoundToOdd(double x) {
  float f = static_cast<float>(x);
  if (std::isnan(x) || static_cast<double>(f) == x) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(x)) {
    f = std::nextafter(f, 0.0f);  // Infinity steps back to the largest finite float.
  }
  uint32_t bits = std::bit_cast<uint32_t>(f);
  return std::bit_cast<float>(bits | 1u);
}

}  // namespace

uint16_t F32ToF16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) {
    // NaN: keep the top payload bits and force the quiet bit so the result is never infinity.
    return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x03ffu));
  }
  // 65520 = 65504 (the largest half) plus half an ulp (16): it and everything above rounds to
  // infinity (ties to even go up here, since 65504's significand is odd).
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs < 0x38800000u) {
    // Below 2^-14, the smallest normal half: a subnormal q * 2^-24, or zero. Values under
    // 2^-25 (half the smallest subnormal) round to zero.
    if (abs < 0x33000000u) return sign;
    const uint32_t exponent = abs >> 23;  // 102..112
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    uint32_t q = mantissa >> shift;
    const uint32_t rem = mantissa & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;  // May carry into the smallest normal.
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even; a
  // carry out of the significand correctly bumps the exponent.
  uint32_t r = abs - 0x38000000u;
  r += 0x0fffu + ((r >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x03ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24 is exact in float.
    const float v = static_cast<float>(mantissa) * 0x1p-24f;
    return (sign != 0) ? -v : v;
  }
  if (exponent == 31) {
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t F32ToBF16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    // NaN: truncating could clear every payload bit left and make infinity; set the quiet bit.
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  // bf16 is the top half of a float, so rounding is on the low 16 bits; the carry handles
  // exponent bumps, overflow to infinity and subnormals alike.
  const uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

float BF16ToF32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t F64ToF16(double x) { return F32ToF16(F64ToF32RoundToOdd(x)); }
uint16_t F64ToBF16(double x) { return F32ToBF16(F64ToF32RoundToOdd(x)); }
float F64ToF32(double x) { return static_cast<float>(x); }

bool IsFloatDType(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 ||
         dtype == DType::kF64;
}

Status ConvertRow(DType src_dtype, const void* src, DType dst_dtype, void* dst, size_t n) {
  if (!IsFloatDType(src_dtype) || !IsFloatDType(dst_dtype)) {
    return InvalidArgument("ConvertRow: cannot convert " + std::string(DTypeName(src_dtype)) +
                           " to " + std::string(DTypeName(dst_dtype)) +
                           " (only f32, f16, bf16 and f64)");
  }
  if (n == 0) return Status::Ok();
  if (src == nullptr || dst == nullptr) return InvalidArgument("ConvertRow: null pointer");
  const auto* in = static_cast<const std::byte*>(src);
  auto* out = static_cast<std::byte*>(dst);
  const size_t in_size = DTypeSize(src_dtype);
  const size_t out_size = DTypeSize(dst_dtype);
  if (src_dtype == dst_dtype) {
    if (in != out) std::memmove(out, in, n * in_size);
    return Status::Ok();
  }
  // One typed loop per (source, destination) pair, so the per-element work is a load, a
  // conversion and a store with no dispatch in between.
  auto run = [&](auto load, auto store) {
    for (size_t i = 0; i < n; ++i) store(out + i * out_size, load(in + i * in_size));
  };
  auto load_f32 = [](const std::byte* p) { return Load<float>(p); };
  auto load_f16 = [](const std::byte* p) { return F16ToF32(Load<uint16_t>(p)); };
  auto load_bf16 = [](const std::byte* p) { return BF16ToF32(Load<uint16_t>(p)); };
  auto load_f64 = [](const std::byte* p) { return Load<double>(p); };
  // f64 sources narrow directly so that each value is rounded once; every other source widens
  // exactly to float first, so there is again one rounding at most.
  if (src_dtype == DType::kF64) {
    switch (dst_dtype) {
      case DType::kF32:
        run(load_f64, [](std::byte* p, double v) { Store<float>(p, F64ToF32(v)); });
        break;
      case DType::kF16:
        run(load_f64, [](std::byte* p, double v) { Store<uint16_t>(p, F64ToF16(v)); });
        break;
      case DType::kBF16:
        run(load_f64, [](std::byte* p, double v) { Store<uint16_t>(p, F64ToBF16(v)); });
        break;
      default:
        break;
    }
    return Status::Ok();
  }
  auto convert_from = [&](auto load) {
    switch (dst_dtype) {
      case DType::kF32:
        run(load, [](std::byte* p, float v) { Store<float>(p, v); });
        break;
      case DType::kF16:
        run(load, [](std::byte* p, float v) { Store<uint16_t>(p, F32ToF16(v)); });
        break;
      case DType::kBF16:
        run(load, [](std::byte* p, float v) { Store<uint16_t>(p, F32ToBF16(v)); });
        break;
      case DType::kF64:
        run(load, [](std::byte* p, float v) { Store<double>(p, static_cast<double>(v)); });
        break;
      default:
        break;
    }
  };
  switch (src_dtype) {
    case DType::kF32:
      convert_from(load_f32);
      break;
    case DType::kF16:
      convert_from(load_f16);
      break;
    case DType::kBF16:
      convert_from(load_bf16);
      break;
    default:
      break;
  }
  return Status::Ok();
}

Status QuantizeQ8Row(const float* x, size_t n, int8_t* quants, DType scale_dtype, void* scales,
                     uint32_t block_size) {
  if (scale_dtype != DType::kF16 && scale_dtype != DType::kF32) {
    return InvalidArgument("q8_0 scales must be f16 or f32, not " +
                           std::string(DTypeName(scale_dtype)));
  }
  if (block_size == 0 || n % block_size != 0) {
    return InvalidArgument("q8_0: row length " + std::to_string(n) +
                           " is not a multiple of the block size " + std::to_string(block_size));
  }
  auto* scale_out = static_cast<std::byte*>(scales);
  const size_t scale_size = DTypeSize(scale_dtype);
  for (size_t b = 0; b < n / block_size; ++b) {
    const float* xb = x + b * block_size;
    int8_t* qb = quants + b * block_size;
    float amax = 0.0f;
    for (uint32_t i = 0; i < block_size; ++i) {
      if (!std::isfinite(xb[i])) {
        return InvalidArgument("q8_0: value " + std::to_string(xb[i]) + " at element " +
                               std::to_string(b * block_size + i) + " is not finite");
      }
      amax = std::max(amax, std::fabs(xb[i]));
    }
    // Quantise against the scale as it will be read back, so rounding the scale to f16 does
    // not add to each element's error.
    float scale = amax / 127.0f;
    if (scale_dtype == DType::kF16) {
      const uint16_t h = F32ToF16(scale);
      if ((h & 0x7c00u) == 0x7c00u) {
        return InvalidArgument("q8_0: block " + std::to_string(b) + " has max |x| = " +
                               std::to_string(amax) + ", too large for an f16 scale");
      }
      Store<uint16_t>(scale_out + b * scale_size, h);
      scale = F16ToF32(h);
    } else {
      Store<float>(scale_out + b * scale_size, scale);
    }
    if (scale == 0.0f) {
      // All zeros, or so small that the scale underflowed: zeros are the nearest quants.
      std::memset(qb, 0, block_size);
      continue;
    }
    for (uint32_t i = 0; i < block_size; ++i) {
      float q = std::round(xb[i] / scale);
      q = std::min(127.0f, std::max(-127.0f, q));
      qb[i] = static_cast<int8_t>(q);
    }
  }
  return Status::Ok();
}

Status DequantizeQ8Row(const int8_t* quants, const void* scales, DType scale_dtype, size_t n,
                       float* out, uint32_t block_size) {
  if (scale_dtype != DType::kF16 && scale_dtype != DType::kF32) {
    return InvalidArgument("q8_0 scales must be f16 or f32, not " +
                           std::string(DTypeName(scale_dtype)));
  }
  if (block_size == 0 || n % block_size != 0) {
    return InvalidArgument("q8_0: row length " + std::to_string(n) +
                           " is not a multiple of the block size " + std::to_string(block_size));
  }
  const auto* scale_in = static_cast<const std::byte*>(scales);
  const size_t scale_size = DTypeSize(scale_dtype);
  for (size_t b = 0; b < n / block_size; ++b) {
    const float scale = scale_dtype == DType::kF16
                            ? F16ToF32(Load<uint16_t>(scale_in + b * scale_size))
                            : Load<float>(scale_in + b * scale_size);
    for (uint32_t i = 0; i < block_size; ++i) {
      out[b * block_size + i] = static_cast<float>(quants[b * block_size + i]) * scale;
    }
  }
  return Status::Ok();
}

}  // namespace recur
