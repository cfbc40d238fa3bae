// Tests ops/embedding.h against ops/reference/embedding.h: every dtype, bit-exact, every target.
#include "ops/embedding.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ops/reference/embedding.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::Buffer;
using testing::ForEachTarget;
using testing::PageGuardedArray;

// Widening and q8_0 dequantisation are exact (one product for q8_0, done identically), so the
// SIMD row must equal the reference bit for bit; NaN payloads aside, NaN must stay NaN.
bool SameValues(const float* got, const float* want, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const bool same = std::isnan(want[i]) ? std::isnan(got[i])
                                          : std::memcmp(&got[i], &want[i], sizeof(float)) == 0;
    if (!same) {
      MESSAGE("first difference at ", i, ": got ", got[i], " want ", want[i]);
      return false;
    }
  }
  return true;
}

TEST_CASE("The f16 and bf16 references decode known bit patterns") {
  CHECK(ref::HalfBitsToFloat(0x3C00) == 1.0f);
  CHECK(ref::HalfBitsToFloat(0xC000) == -2.0f);
  CHECK(ref::HalfBitsToFloat(0x7BFF) == 65504.0f);
  CHECK(ref::HalfBitsToFloat(0x0001) == std::ldexp(1.0f, -24));  // Smallest subnormal.
  CHECK(ref::HalfBitsToFloat(0x0400) == std::ldexp(1.0f, -14));  // Smallest normal.
  CHECK(ref::HalfBitsToFloat(0x7C00) == INFINITY);
  CHECK(std::isnan(ref::HalfBitsToFloat(0x7E00)));
  CHECK(std::signbit(ref::HalfBitsToFloat(0x8000)));
  CHECK(ref::BFloat16BitsToFloat(0x3F80) == 1.0f);
  CHECK(ref::BFloat16BitsToFloat(0xC0A0) == -5.0f);
}

struct Table {
  WeightView view;
  std::vector<uint8_t> data, scales;
};

// A [rows, cols] table of the given type filled with random bits (f16/bf16: every pattern,
// subnormals, infinities and NaN included; q8_0: random quants with random positive scales).
Table MakeTable(WeightType type, ScaleType scale_type, size_t rows, size_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  Table t;
  t.view.type = type;
  t.view.scale_type = scale_type;
  t.view.rows = rows;
  t.view.cols = cols;
  const size_t elem = type == WeightType::kF32 ? 4 : type == WeightType::kQ8_0 ? 1 : 2;
  t.data.resize(rows * cols * elem);
  if (type == WeightType::kF32) {
    std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
    for (size_t i = 0; i < rows * cols; ++i) {
      const float v = dist(rng);
      std::memcpy(&t.data[i * 4], &v, 4);
    }
  } else {
    for (uint8_t& b : t.data) b = static_cast<uint8_t>(rng());
  }
  if (type == WeightType::kQ8_0) {
    const size_t blocks = rows * cols / kQ8Block;
    std::uniform_real_distribution<float> dist(1e-3f, 0.1f);
    if (scale_type == ScaleType::kF32) {
      t.scales.resize(blocks * 4);
      for (size_t b = 0; b < blocks; ++b) {
        const float s = dist(rng);
        std::memcpy(&t.scales[b * 4], &s, 4);
      }
    } else {
      // f16 scales between 2^-10 and 2^-4: exponent field 5..11, random mantissa.
      t.scales.resize(blocks * 2);
      for (size_t b = 0; b < blocks; ++b) {
        const uint16_t bits = static_cast<uint16_t>(((5 + rng() % 7) << 10) | (rng() & 0x3FF));
        std::memcpy(&t.scales[b * 2], &bits, 2);
      }
    }
    t.view.scales = t.scales.data();
  }
  t.view.data = t.data.data();
  return t;
}

TEST_CASE("GatherRow equals the reference bit for bit for every dtype, width and row") {
  struct Case {
    WeightType type;
    ScaleType scale_type;
    std::vector<size_t> widths;
  };
  const std::vector<size_t> any_width = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 100, 4099};
  const std::vector<size_t> q8_width = {32, 64, 96, 4096};
  const Case cases[] = {{WeightType::kF32, ScaleType::kF16, any_width},
                        {WeightType::kF16, ScaleType::kF16, any_width},
                        {WeightType::kBF16, ScaleType::kF16, any_width},
                        {WeightType::kQ8_0, ScaleType::kF16, q8_width},
                        {WeightType::kQ8_0, ScaleType::kF32, q8_width}};
  ForEachTarget([&](const std::string&) {
    for (const Case& c : cases) {
      for (size_t cols : c.widths) {
        CAPTURE(static_cast<int>(c.type));
        CAPTURE(static_cast<int>(c.scale_type));
        CAPTURE(cols);
        const size_t rows = 5;
        const Table t = MakeTable(c.type, c.scale_type, rows, cols, static_cast<uint32_t>(cols));
        for (size_t row : {size_t{0}, size_t{2}, rows - 1}) {
          Buffer out(cols, 1);  // Misaligned output.
          std::vector<float> want(cols);
          GatherRow(t.view, row, out.data());
          ref::GatherRow(t.view, row, want.data());
          CHECK(SameValues(out.data(), want.data(), cols));
          CHECK(out.GuardIntact());
        }
        // Several ids in one call, repeats included.
        const int32_t ids[4] = {4, 0, 4, 1};
        std::vector<float> got(4 * cols), want(cols);
        GatherRows(t.view, ids, 4, got.data());
        for (size_t k = 0; k < 4; ++k) {
          ref::GatherRow(t.view, static_cast<size_t>(ids[k]), want.data());
          CHECK(SameValues(got.data() + k * cols, want.data(), cols));
        }
      }
    }
  });
}

TEST_CASE("GatherRow of the last row reads nothing past the table (guard page)") {
  ForEachTarget([](const std::string&) {
    for (size_t cols : {1, 3, 7, 17, 33}) {
      CAPTURE(cols);
      const size_t rows = 3;
      for (WeightType type : {WeightType::kF16, WeightType::kBF16}) {
        PageGuardedArray<uint16_t> bits(rows * cols);
        for (size_t i = 0; i < rows * cols; ++i) bits[i] = static_cast<uint16_t>(0x3C00 + i);
        WeightView view;
        view.type = type;
        view.data = bits.data();
        view.rows = rows;
        view.cols = cols;
        PageGuardedArray<float> out(cols);
        std::vector<float> want(cols);
        GatherRow(view, rows - 1, out.data());
        ref::GatherRow(view, rows - 1, want.data());
        CHECK(SameValues(out.data(), want.data(), cols));
      }
    }
  });
}

}  // namespace
}  // namespace recur::ops
