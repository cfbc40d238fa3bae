// Tests ops/matvec.cc against the scalar reference ops/reference/matvec_ref.cc on every compiled
// Highway target, every weight type, awkward shapes, unaligned pointers and row sub-ranges.
#include "ops/matvec.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "ops/convert.h"
#include "ops/reference/matvec_ref.h"
#include "ops/types.h"
#include "tests/ops/weight_test_util.h"

namespace recur::ops {
namespace {

using testing::MakeMatrix;
using testing::RandomVector;
using testing::TestMatrix;

// Tolerance: an f32 sum of n terms is off by at most about n * eps * sum|terms| (worst case) and
// typically sqrt(n) * eps * sum|terms| (eps = 6e-8). Every kernel splits a row over >= 2
// accumulators (16+ lanes each on SIMD targets), so with cols <= 1100 the typical error is below
// 2e-6 of sum |w||x| + |bias|, and below 6e-6 even for 16K columns on the 1-lane scalar target.
// 1e-5 of that sum leaves margin yet catches any dropped, doubled or misplaced term, which costs
// about sum / cols (>= 6e-5 of it for cols <= 16K).
constexpr double kRelTol = 1e-5;

// Runs MatVec over [row_begin, row_end) and checks it against the reference, and that reading W
// as if shared with other cores or in cache gives the same bits; entries outside the range must
// keep their sentinel.
void CheckMatVec(const TestMatrix& m, const float* x, const float* bias, size_t row_begin,
                 size_t row_end) {
  const WeightView& w = m.view;
  constexpr float kSentinel = 12345.0f;
  std::vector<float> y(w.rows, kSentinel);
  std::vector<float> expected(w.rows, kSentinel);
  MatVec(w, x, bias, y.data(), row_begin, row_end);
  ref::MatVec(w, x, bias, expected.data(), row_begin, row_end);
  // W in cache is read in another order (rows side by side) and must give the same bits:
  // batched decoding mixes the two and promises the same result as separate steps.
  // Shared memory only adds prefetches.
  for (const MatVecSource source : {MatVecSource::kMemoryShared, MatVecSource::kCache}) {
    CAPTURE(static_cast<int>(source));
    std::vector<float> y_other(w.rows, kSentinel);
    MatVec(w, x, bias, y_other.data(), row_begin, row_end, source);
    CHECK((y.empty() || std::memcmp(y.data(), y_other.data(), y.size() * sizeof(float)) == 0));
  }
  double worst = 0.0;  // Largest error / tolerance seen.
  for (size_t r = 0; r < w.rows; ++r) {
    if (r < row_begin || r >= row_end) {
      CHECK(y[r] == kSentinel);
      continue;
    }
    double scale = bias != nullptr ? std::fabs(bias[r]) : 0.0;
    for (size_t c = 0; c < w.cols; ++c) scale += std::fabs(WeightAt(w, r, c) * x[c]);
    const double tol = kRelTol * scale + 1e-30;
    worst = std::max(worst, std::fabs(static_cast<double>(y[r]) - expected[r]) / tol);
  }
  CAPTURE(w.rows);
  CAPTURE(w.cols);
  CAPTURE(row_begin);
  CAPTURE(row_end);
  CHECK(worst <= 1.0);
}

const char* TypeName(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return "f32";
    case WeightType::kF16:
      return "f16";
    case WeightType::kBF16:
      return "bf16";
    case WeightType::kQ8_0:
      return "q8_0";
  }
  return "?";
}

// Every shape x alignment x bias x row range for one weight type on the current target.
void CheckAllShapes(WeightType type, ScaleType scale_type, const std::vector<size_t>& col_sizes) {
  // Rows around the kernels' groups of 8 and 4 rows (13 = 8 + 4 + 1); columns around every
  // target's lane count (1, 4, 8, 16) and its 2-vector unroll, plus large and odd sizes.
  const std::vector<size_t> row_sizes = {0, 1, 3, 4, 5, 9, 13, 17};
  uint32_t seed = 1;
  for (size_t rows : row_sizes) {
    for (size_t cols : col_sizes) {
      for (size_t misalign : {0, 1}) {
        const TestMatrix m = MakeMatrix(type, scale_type, rows, cols, misalign, seed++);
        // x is offset by `misalign` floats from its allocation as well.
        std::vector<float> x_storage = RandomVector(cols + 1, seed++);
        const float* x = x_storage.data() + misalign;
        const std::vector<float> bias = RandomVector(rows, seed++);
        CAPTURE(std::string(TypeName(type)));
        CAPTURE(misalign);
        CheckMatVec(m, x, nullptr, 0, rows);
        CheckMatVec(m, x, bias.data(), 0, rows);
        if (rows > 2) CheckMatVec(m, x, bias.data(), 1, rows - 1);
        if (rows > 5) CheckMatVec(m, x, nullptr, 5, rows);
      }
    }
  }
}

const std::vector<size_t> kDenseCols = {0,  1,  2,  3,  4,  5,  7,  8,   9,   15,   16,  17,
                                        31, 32, 33, 47, 63, 64, 65, 100, 257, 1000, 1031};
// Rows of fewer than 512 columns take the side-by-side q8_0 kernel, longer ones the row-by-row
// one (kQ8SequentialMinCols).
const std::vector<size_t> kQ8Cols = {0, 32, 64, 96, 320, 480, 512, 544, 1024, 1056};

// Runs body once per compiled and supported Highway target, with dispatch pinned to it.
template <class F>
void ForEachTarget(F&& body) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    CAPTURE(std::string(hwy::TargetName(target)));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST_CASE("MatVec f32 matches the reference on every target") {
  ForEachTarget([] { CheckAllShapes(WeightType::kF32, ScaleType::kF16, kDenseCols); });
}

TEST_CASE("MatVec f16 matches the reference on every target") {
  ForEachTarget([] { CheckAllShapes(WeightType::kF16, ScaleType::kF16, kDenseCols); });
}

TEST_CASE("MatVec bf16 matches the reference on every target") {
  ForEachTarget([] { CheckAllShapes(WeightType::kBF16, ScaleType::kF16, kDenseCols); });
}

TEST_CASE("MatVec q8_0 with f16 and f32 scales matches the reference on every target") {
  ForEachTarget([] {
    CheckAllShapes(WeightType::kQ8_0, ScaleType::kF16, kQ8Cols);
    CheckAllShapes(WeightType::kQ8_0, ScaleType::kF32, kQ8Cols);
  });
}

TEST_CASE("MatVec keeps f16 infinities and NaNs on every target") {
  // Highway 1.0.3 emulates f16 widening without F16C and maps exponent 31 to finite numbers;
  // the kernels decode the bits themselves there. Row 0 holds +inf, row 1 a NaN, row 2 -inf.
  constexpr size_t kCols = 37;  // Not a multiple of any vector length: the tail path runs too.
  std::vector<uint16_t> w(3 * kCols, F32ToF16(0.5f));
  w[0 * kCols + 3] = 0x7C00;
  w[1 * kCols + kCols - 1] = 0x7E01;
  w[2 * kCols + 20] = 0xFC00;
  std::vector<float> x(kCols, 1.0f);
  WeightView view;
  view.type = WeightType::kF16;
  view.data = w.data();
  view.rows = 3;
  view.cols = kCols;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string target_name = hwy::TargetName(target);
    CAPTURE(target_name);
    float y[3] = {};
    MatVec(view, x.data(), nullptr, y, 0, 3);
    CHECK((std::isinf(y[0]) && y[0] > 0));
    CHECK(std::isnan(y[1]));
    CHECK((std::isinf(y[2]) && y[2] < 0));
    std::vector<float> row(kCols);
    DequantizeRow(view, 0, row.data());
    CHECK(std::isinf(row[3]));
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST_CASE("MatVec on a large matrix matches the reference on every target") {
  ForEachTarget([] {
    for (WeightType type :
         {WeightType::kF32, WeightType::kF16, WeightType::kBF16, WeightType::kQ8_0}) {
      CAPTURE(std::string(TypeName(type)));
      const TestMatrix m = MakeMatrix(type, ScaleType::kF16, 203, 2080, 1, 7);
      const std::vector<float> x = RandomVector(2080, 8);
      const std::vector<float> bias = RandomVector(203, 9);
      CheckMatVec(m, x.data(), bias.data(), 0, 203);
      CheckMatVec(m, x.data(), nullptr, 13, 150);
    }
  });
}

TEST_CASE("MatVec on very long rows matches the reference") {
  // 16416 columns: q8_0 quantizes x in two column chunks, and the prefetches run far past each
  // row; the rounding budget is the same (sqrt(16416 / 2) * 6e-8 < 1e-5).
  ForEachTarget([] {
    for (WeightType type :
         {WeightType::kF32, WeightType::kF16, WeightType::kBF16, WeightType::kQ8_0}) {
      CAPTURE(std::string(TypeName(type)));
      const TestMatrix m = MakeMatrix(type, ScaleType::kF32, 13, 16416, 0, 21);
      const std::vector<float> x = RandomVector(16416, 22);
      CheckMatVec(m, x.data(), nullptr, 0, 13);
    }
  });
}

TEST_CASE("q8_0 MatVec through int16 x stays within x's rounding of the exact product") {
  // The kernel rounds each 32-block of x to int16 at scale max|x_block| / 32767, so each product
  // moves by at most |w| * max|x_block| / 65534; on top comes f32 summation (kRelTol). Blocks
  // of very different magnitude (x spans 1e-3 to 1e3) make the per-block scales matter.
  ForEachTarget([] {
    for (ScaleType scale_type : {ScaleType::kF16, ScaleType::kF32}) {
      const size_t rows = 37, cols = 8192 + 320;  // Two chunks of quantized x.
      const TestMatrix m = MakeMatrix(WeightType::kQ8_0, scale_type, rows, cols, 0, 31);
      std::vector<float> x = RandomVector(cols, 32);
      for (size_t c = 0; c < cols; ++c) {
        x[c] *= std::pow(10.0f, static_cast<float>(c / 32 % 7) - 3);
      }
      std::vector<float> y(rows), exact(rows);
      MatVec(m.view, x.data(), nullptr, y.data(), 0, rows);
      ref::MatVecF32X(m.view, x.data(), nullptr, exact.data(), 0, rows);
      double worst = 0.0;
      for (size_t r = 0; r < rows; ++r) {
        double sum_abs = 0.0, rounding = 0.0;
        for (size_t b = 0; b < cols / kQ8Block; ++b) {
          double max_x = 0.0;
          for (size_t j = 0; j < kQ8Block; ++j) {
            max_x = std::max(max_x, std::fabs(double{x[b * 32 + j]}));
          }
          for (size_t j = 0; j < kQ8Block; ++j) {
            const double wv = std::fabs(double{WeightAt(m.view, r, b * 32 + j)});
            sum_abs += wv * std::fabs(double{x[b * 32 + j]});
            rounding += wv * max_x / 65534.0;
          }
        }
        const double tol = rounding + kRelTol * sum_abs;
        worst = std::max(worst, std::fabs(double{y[r]} - exact[r]) / tol);
      }
      CHECK(worst <= 1.0);
      // And the int16 step really runs: the result is not the f32-x product to f32 accuracy.
      double max_diff = 0.0;
      for (size_t r = 0; r < rows; ++r) {
        max_diff = std::max(max_diff, std::fabs(double{y[r]} - exact[r]));
      }
      CHECK(max_diff > 0.0);
    }
  });
}

TEST_CASE("q8_0 MatVec with inf or NaN in x keeps them, and zero x gives the bias") {
  ForEachTarget([] {
    const size_t rows = 9, cols = 96;
    const TestMatrix m = MakeMatrix(WeightType::kQ8_0, ScaleType::kF16, rows, cols, 0, 41);
    const std::vector<float> bias = RandomVector(rows, 42);
    for (float special : {std::numeric_limits<float>::infinity(), std::nanf("")}) {
      std::vector<float> x = RandomVector(cols, 43);
      x[70] = special;
      std::vector<float> y(rows), expected(rows);
      MatVec(m.view, x.data(), bias.data(), y.data(), 0, rows);
      ref::MatVec(m.view, x.data(), bias.data(), expected.data(), 0, rows);
      for (size_t r = 0; r < rows; ++r) {
        CAPTURE(r);
        CHECK(std::isnan(y[r]) == std::isnan(expected[r]));
        CHECK(std::isinf(y[r]) == std::isinf(expected[r]));
        CHECK(!std::isfinite(y[r]) == (WeightAt(m.view, r, 70) != 0.0f));
      }
    }
    const std::vector<float> zeros(cols, 0.0f);
    std::vector<float> y(rows);
    MatVec(m.view, zeros.data(), bias.data(), y.data(), 0, rows);
    for (size_t r = 0; r < rows; ++r) CHECK(y[r] == bias[r]);
  });
}

TEST_CASE("MatVec with an empty row range writes nothing") {
  const TestMatrix m = MakeMatrix(WeightType::kF32, ScaleType::kF16, 4, 8, 0, 3);
  const std::vector<float> x = RandomVector(8, 4);
  std::vector<float> y(4, -1.0f);
  MatVec(m.view, x.data(), nullptr, y.data(), 2, 2);
  for (float v : y) CHECK(v == -1.0f);
}

TEST_CASE("DequantizeRow decodes every weight type exactly") {
  ForEachTarget([] {
    for (WeightType type :
         {WeightType::kF32, WeightType::kF16, WeightType::kBF16, WeightType::kQ8_0}) {
      for (ScaleType scale_type : {ScaleType::kF16, ScaleType::kF32}) {
        const size_t cols = type == WeightType::kQ8_0 ? 96 : 37;
        const TestMatrix m = MakeMatrix(type, scale_type, 3, cols, 1, 11);
        std::vector<float> row(cols);
        for (size_t r = 0; r < 3; ++r) {
          DequantizeRow(m.view, r, row.data());
          for (size_t c = 0; c < cols; ++c) CHECK(row[c] == WeightAt(m.view, r, c));
        }
      }
    }
  });
}

TEST_CASE("Scalar f16 and bf16 conversions round to nearest even and keep specials") {
  // Exact round trips for every half value that is not NaN.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0) continue;
    CHECK(F32ToF16(F16ToF32(static_cast<uint16_t>(h))) == h);
  }
  CHECK(std::isnan(F16ToF32(0x7E00)));
  CHECK(std::isnan(F16ToF32(F32ToF16(std::nanf("")))));
  CHECK(F32ToF16(65520.0f) == 0x7C00);         // Rounds up past the largest half: infinity.
  CHECK(F32ToF16(65519.0f) == 0x7BFF);         // Largest finite half.
  CHECK(F32ToF16(1.0f + 0x1p-11f) == 0x3C00);  // Tie: stays at the even mantissa 1.0.
  CHECK(F32ToF16(1.0f + 0x3p-11f) == 0x3C02);  // Tie: rounds up to the even mantissa.
  CHECK(F16ToF32(0x0001) == 0x1p-24f);         // Smallest subnormal.
  CHECK(F32ToF16(0x1p-25f) == 0x0000);         // Tie between 0 and the smallest subnormal.
  CHECK(F32ToBF16(1.0f + 0x1p-8f) == 0x3F80);  // Tie: stays even.
  CHECK(F32ToBF16(1.0f + 0x3p-8f) == 0x3F82);  // Tie: rounds up to even.
  CHECK(BF16ToF32(0x3F80) == 1.0f);
  CHECK(std::isnan(BF16ToF32(F32ToBF16(std::nanf("")))));
}

}  // namespace
}  // namespace recur::ops
