#include "formats/dtype_convert.h"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <ios>
#include <limits>
#include <random>
#include <vector>

namespace recur {
namespace {

bool IsF16NaN(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0; }
bool IsBF16NaN(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x007fu) != 0; }
float FromBits(uint32_t bits) { return std::bit_cast<float>(bits); }

TEST_CASE("f16: exact bit patterns, rounding ties, overflow, subnormals") {
  CHECK(F32ToF16(0.0f) == 0x0000);
  CHECK(F32ToF16(-0.0f) == 0x8000);
  CHECK(F32ToF16(1.0f) == 0x3c00);
  CHECK(F32ToF16(-2.0f) == 0xc000);
  CHECK(F32ToF16(0.1f) == 0x2e66);
  CHECK(F32ToF16(1.0f / 3.0f) == 0x3555);
  CHECK(F32ToF16(65504.0f) == 0x7bff);  // The largest finite half.
  // Halfway between 65504 and "65536" rounds to even, i.e. up to infinity; just below stays.
  CHECK(F32ToF16(65520.0f) == 0x7c00);
  CHECK(F32ToF16(std::nextafter(65520.0f, 0.0f)) == 0x7bff);
  CHECK(F32ToF16(1e10f) == 0x7c00);
  CHECK(F32ToF16(-1e10f) == 0xfc00);
  CHECK(F32ToF16(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK(F32ToF16(-std::numeric_limits<float>::infinity()) == 0xfc00);
  CHECK(IsF16NaN(F32ToF16(std::numeric_limits<float>::quiet_NaN())));
  // A signalling NaN whose payload lives only in the low bits must not turn into infinity.
  CHECK(IsF16NaN(F32ToF16(FromBits(0x7f800001u))));
  CHECK(IsF16NaN(F32ToF16(FromBits(0xff800001u))));

  // Ties to even among normals: 1 + 2^-11 lies halfway between 0x3c00 and 0x3c01.
  CHECK(F32ToF16(1.0f + 0x1p-11f) == 0x3c00);
  CHECK(F32ToF16(1.0f + 3 * 0x1p-11f) == 0x3c02);
  CHECK(F32ToF16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);
  CHECK(F32ToF16(1.0f + 0x1p-11f - 0x1p-23f) == 0x3c00);
  // A carry out of the significand bumps the exponent: 2 - 2^-12 rounds up to 2.
  CHECK(F32ToF16(2.0f - 0x1p-12f) == 0x4000);

  // Subnormals: q * 2^-24.
  CHECK(F32ToF16(0x1p-14f) == 0x0400);         // Smallest normal.
  CHECK(F32ToF16(1023 * 0x1p-24f) == 0x03ff);  // Largest subnormal.
  CHECK(F32ToF16(0x1p-24f) == 0x0001);         // Smallest subnormal.
  CHECK(F32ToF16(0x1p-25f) == 0x0000);         // Halfway to 0x0001: ties to even (zero).
  CHECK(F32ToF16(0x1p-25f + 0x1p-40f) == 0x0001);
  CHECK(F32ToF16(3 * 0x1p-25f) == 0x0002);  // 1.5 ulp: ties to even (2).
  CHECK(F32ToF16(5 * 0x1p-25f) == 0x0002);  // 2.5 ulp: ties to even (2).
  CHECK(F32ToF16(-0x1p-24f) == 0x8001);
  CHECK(F32ToF16(0x1p-30f) == 0x0000);
  CHECK(F32ToF16(FromBits(0x00000001u)) == 0x0000);  // A float subnormal.
  // The largest subnormal plus half an ulp rounds up into the smallest normal.
  CHECK(F32ToF16(1023.5f * 0x1p-24f) == 0x0400);

  CHECK(F16ToF32(0x3c00) == 1.0f);
  CHECK(F16ToF32(0xc000) == -2.0f);
  CHECK(F16ToF32(0x7bff) == 65504.0f);
  CHECK(F16ToF32(0x3555) == 0.333251953125f);
  CHECK(F16ToF32(0x0001) == 0x1p-24f);
  CHECK(F16ToF32(0x03ff) == 1023 * 0x1p-24f);
  CHECK(F16ToF32(0x0400) == 0x1p-14f);
  CHECK(std::bit_cast<uint32_t>(F16ToF32(0x8000)) == 0x80000000u);
  CHECK(F16ToF32(0x7c00) == std::numeric_limits<float>::infinity());
  CHECK(F16ToF32(0xfc00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(F16ToF32(0x7e00)));
  CHECK(std::isnan(F16ToF32(0x7c01)));
}

TEST_CASE("f16: every half round-trips through float") {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (IsF16NaN(static_cast<uint16_t>(h))) {
      CHECK(std::isnan(f));
      CHECK(IsF16NaN(F32ToF16(f)));
    } else if (F32ToF16(f) != h) {
      FAIL("half 0x" << std::hex << h << " did not round-trip");
    }
  }
}

// GCC before 13 defines __FLT16_MAX__ on aarch64 but has _Float16 in C only; there the Arm
// __fp16 type (IEEE binary16 on aarch64) is the compiler's half.
#if defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#define RECUR_TEST_COMPILER_HALF __fp16
#elif defined(__FLT16_MAX__)
#define RECUR_TEST_COMPILER_HALF _Float16
#endif

#ifdef RECUR_TEST_COMPILER_HALF
TEST_CASE("f16: agrees with the compiler's _Float16 conversion on a sweep of floats") {
  // A prime stride visits exponents and significands evenly across all 2^32 patterns.
  size_t mismatches = 0;
  for (uint64_t bits = 0; bits < (1ull << 32); bits += 4099) {
    const float f = FromBits(static_cast<uint32_t>(bits));
    const RECUR_TEST_COMPILER_HALF reference = static_cast<RECUR_TEST_COMPILER_HALF>(f);
    uint16_t expected;
    std::memcpy(&expected, &reference, 2);
    const uint16_t got = F32ToF16(f);
    if (std::isnan(f) ? !IsF16NaN(got) : got != expected) {
      if (++mismatches < 5) FAIL_CHECK("float bits 0x" << std::hex << bits);
    }
  }
  CHECK(mismatches == 0);
}
#endif

TEST_CASE("bf16: exact bit patterns, ties, overflow, NaN, subnormals") {
  CHECK(F32ToBF16(1.0f) == 0x3f80);
  CHECK(F32ToBF16(-2.0f) == 0xc000);
  CHECK(F32ToBF16(3.14159274f) == 0x4049);
  CHECK(F32ToBF16(FromBits(0x3f808000u)) == 0x3f80);  // Tie, even is down.
  CHECK(F32ToBF16(FromBits(0x3f818000u)) == 0x3f82);  // Tie, even is up.
  CHECK(F32ToBF16(FromBits(0x3f808001u)) == 0x3f81);
  CHECK(F32ToBF16(FromBits(0x3f807fffu)) == 0x3f80);
  CHECK(F32ToBF16(std::numeric_limits<float>::max()) == 0x7f80);  // Rounds past the top.
  CHECK(F32ToBF16(FromBits(0x7f7f7fffu)) == 0x7f7f);
  CHECK(F32ToBF16(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(F32ToBF16(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(IsBF16NaN(F32ToBF16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(IsBF16NaN(F32ToBF16(FromBits(0x7f800001u))));  // Payload only in the dropped bits.
  CHECK(F32ToBF16(FromBits(0x00008000u)) == 0x0000);   // Subnormal tie to even (zero).
  CHECK(F32ToBF16(FromBits(0x00018000u)) == 0x0002);
  CHECK(F32ToBF16(FromBits(0x00010000u)) == 0x0001);
  CHECK(F32ToBF16(FromBits(0x80000001u)) == 0x8000);
  CHECK(F32ToBF16(-0.0f) == 0x8000);

  CHECK(BF16ToF32(0x3f80) == 1.0f);
  CHECK(BF16ToF32(0x4049) == 3.140625f);
  CHECK(BF16ToF32(0x0001) == FromBits(0x00010000u));
  CHECK(BF16ToF32(0xff80) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(BF16ToF32(0x7fc0)));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = BF16ToF32(static_cast<uint16_t>(b));
    if (!std::isnan(f) && F32ToBF16(f) != b) FAIL("bf16 0x" << std::hex << b);
  }
}

TEST_CASE("f64 narrows with a single rounding") {
  // 1 + 2^-11 + 2^-40 is just above the f16 halfway point; through float it would first
  // round onto the halfway point and then to even (down). The right answer is up.
  CHECK(F64ToF16(1.0 + 0x1p-11 + 0x1p-40) == 0x3c01);
  CHECK(F64ToF16(1.0 + 0x1p-11) == 0x3c00);
  CHECK(F64ToF16(1.0 + 0x1p-11 - 0x1p-40) == 0x3c00);
  CHECK(F64ToBF16(1.0 + 0x1p-8 + 0x1p-40) == 0x3f81);
  CHECK(F64ToBF16(1.0 + 0x1p-8) == 0x3f80);
  CHECK(F64ToF16(65520.0) == 0x7c00);
  CHECK(F64ToF16(65519.999) == 0x7bff);
  CHECK(F64ToF16(1e300) == 0x7c00);
  CHECK(F64ToF16(-1e300) == 0xfc00);
  CHECK(F64ToBF16(1e300) == 0x7f80);
  CHECK(F64ToF16(1e-300) == 0x0000);
  CHECK(F64ToF16(-1e-300) == 0x8000);
  CHECK(F64ToF16(0x1p-25 + 0x1p-60) == 0x0001);
  CHECK(IsF16NaN(F64ToF16(std::numeric_limits<double>::quiet_NaN())));
  CHECK(IsBF16NaN(F64ToBF16(std::numeric_limits<double>::quiet_NaN())));
  CHECK(F64ToF16(std::numeric_limits<double>::infinity()) == 0x7c00);
  CHECK(F64ToF32(1e300) == std::numeric_limits<float>::infinity());
  CHECK(F64ToF32(0.1) == 0.1f);
}

TEST_CASE("ConvertRow: every pair of float dtypes, unaligned pointers") {
  const std::vector<float> values = {0.0f, -1.5f, 3.25f, 65504.0f, 1e-6f, -7.0f, 0.1f};
  const size_t n = values.size();
  // Offset by one byte so nothing is aligned.
  std::vector<std::byte> a(n * 8 + 1), b(n * 8 + 1), c(n * 8 + 1);
  REQUIRE(ConvertRow(DType::kF32, values.data(), DType::kF32, a.data() + 1, n).ok());
  for (DType mid : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64}) {
    CAPTURE(DTypeName(mid));
    REQUIRE(ConvertRow(DType::kF32, a.data() + 1, mid, b.data() + 1, n).ok());
    for (DType out : {DType::kF32, DType::kF64}) {
      REQUIRE(ConvertRow(mid, b.data() + 1, out, c.data() + 1, n).ok());
      for (size_t i = 0; i < n; ++i) {
        double got;
        if (out == DType::kF32) {
          float f;
          std::memcpy(&f, c.data() + 1 + i * 4, 4);
          got = f;
        } else {
          std::memcpy(&got, c.data() + 1 + i * 8, 8);
        }
        const double tolerance = mid == DType::kF16 ? 0x1p-11 : mid == DType::kBF16 ? 0x1p-8 : 0.0;
        // f16 cannot hold 1e-6 relative-accurately (it is subnormal there): allow its ulp.
        CHECK(std::fabs(got - values[i]) <= std::fabs(values[i]) * tolerance + 0x1p-25);
      }
    }
  }
  // Same-dtype copies are exact; f16 <-> bf16 goes through float exactly.
  uint16_t h = F32ToF16(1.5f), bf = 0;
  REQUIRE(ConvertRow(DType::kF16, &h, DType::kBF16, &bf, 1).ok());
  CHECK(bf == F32ToBF16(1.5f));
  CHECK(!ConvertRow(DType::kQ8_0, a.data(), DType::kF32, b.data(), 1).ok());
  CHECK(!ConvertRow(DType::kF32, a.data(), DType::kI32, b.data(), 1).ok());
  CHECK(ConvertRow(DType::kF32, nullptr, DType::kF16, nullptr, 0).ok());
}

TEST_CASE("q8_0: known values, zero blocks, errors") {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = -127.0f;
  x[2] = 63.5f;  // Exactly halfway: rounds away from zero.
  x[3] = 1.0f;
  std::vector<int8_t> q(32);
  float scale = -1.0f;
  REQUIRE(QuantizeQ8Row(x.data(), 32, q.data(), DType::kF32, &scale).ok());
  CHECK(scale == 1.0f);
  CHECK(q[0] == 127);
  CHECK(q[1] == -127);
  CHECK(q[2] == 64);
  CHECK(q[3] == 1);
  CHECK(q[4] == 0);

  std::vector<float> zeros(64, 0.0f);
  std::vector<int8_t> qz(64, 5);
  uint16_t scales[2] = {0xffff, 0xffff};
  REQUIRE(QuantizeQ8Row(zeros.data(), 64, qz.data(), DType::kF16, scales).ok());
  CHECK(scales[0] == 0);
  CHECK(scales[1] == 0);
  for (int8_t v : qz) CHECK(v == 0);
  std::vector<float> back(64, 1.0f);
  REQUIRE(DequantizeQ8Row(qz.data(), scales, DType::kF16, 64, back.data()).ok());
  for (float v : back) CHECK(v == 0.0f);

  // Errors rather than silent garbage.
  x[5] = std::numeric_limits<float>::infinity();
  Status s = QuantizeQ8Row(x.data(), 32, q.data(), DType::kF16, scales);
  CHECK(!s.ok());
  CHECK(s.message().find("not finite") != std::string::npos);
  x[5] = 0.0f;
  CHECK(!QuantizeQ8Row(x.data(), 31, q.data(), DType::kF16, scales).ok());
  CHECK(!QuantizeQ8Row(x.data(), 32, q.data(), DType::kBF16, scales).ok());
  x[0] = 1e7f;  // Scale 78740 does not fit in f16 ...
  s = QuantizeQ8Row(x.data(), 32, q.data(), DType::kF16, scales);
  CHECK(!s.ok());
  CHECK(s.message().find("f16 scale") != std::string::npos);
  CHECK(QuantizeQ8Row(x.data(), 32, q.data(), DType::kF32, scales).ok());  // ... but in f32.
}

TEST_CASE("q8_0: round trip error is at most half a scale per element") {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t n = 32 * 64;
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) {
    // Blocks of very different magnitudes, including tiny ones near f16's subnormal range.
    const float magnitude = std::pow(10.0f, static_cast<float>(static_cast<int>(i / 32) % 9 - 6));
    x[i] = normal(rng) * magnitude;
  }
  for (DType scale_dtype : {DType::kF16, DType::kF32}) {
    CAPTURE(DTypeName(scale_dtype));
    std::vector<int8_t> q(n);
    std::vector<std::byte> scales(n / 32 * DTypeSize(scale_dtype));
    REQUIRE(QuantizeQ8Row(x.data(), n, q.data(), scale_dtype, scales.data()).ok());
    std::vector<float> y(n);
    REQUIRE(DequantizeQ8Row(q.data(), scales.data(), scale_dtype, n, y.data()).ok());
    for (size_t b = 0; b < n / 32; ++b) {
      float scale;
      if (scale_dtype == DType::kF16) {
        uint16_t h;
        std::memcpy(&h, scales.data() + b * 2, 2);
        scale = F16ToF32(h);
      } else {
        std::memcpy(&scale, scales.data() + b * 4, 4);
      }
      float amax = 0.0f;
      for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
      // An f16 scale below 2^-14 is subnormal, on a grid of 2^-24: rounding it down can clip
      // the block's largest values by up to 127 * 2^-25 (and a scale that underflows to zero
      // zeroes the block). Such blocks hold values below ~1e-5, where that is noise.
      if (scale_dtype == DType::kF16 && amax / 127.0f < 0x1p-14f) {
        for (size_t i = 0; i < 32; ++i) {
          CHECK(std::fabs(x[b * 32 + i] - y[b * 32 + i]) <= scale * 0.5f + 127 * 0x1p-25f);
        }
        continue;
      }
      for (size_t i = 0; i < 32; ++i) {
        const float err = std::fabs(x[b * 32 + i] - y[b * 32 + i]);
        if (!(err <= scale * 0.5f * (1.0f + 1e-5f))) {
          FAIL_CHECK("block " << b << " element " << i << ": error " << err
                              << " > scale/2 = " << scale * 0.5f);
        }
      }
    }
  }
}

}  // namespace
}  // namespace recur
