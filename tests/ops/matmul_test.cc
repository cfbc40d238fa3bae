// Tests ops/matmul.cc against the scalar reference ops/reference/matmul_ref.cc on every compiled
// Highway target and weight type, at shapes that cross every blocking boundary of the kernel
// (token tiles, micro-panels, 512-row panels, 256-column slices), with unaligned X and W, row
// sub-ranges, with and without bias, and with caller and internal scratch.
#include "ops/matmul.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "ops/convert.h"
#include "ops/reference/matmul_ref.h"
#include "ops/types.h"
#include "tests/ops/weight_test_util.h"

namespace recur::ops {
namespace {

using testing::MakeMatrix;
using testing::RandomVector;
using testing::TestMatrix;

// Tolerance, as for MatVec: the kernel sums each output over one f32 accumulator per 256-column
// slice plus one add per slice, so for cols <= 1100 the typical rounding error is a few 1e-7 of
// sum |w||x| + |bias| and the worst case about cols * 6e-8. 1e-5 of that sum still catches any
// dropped, doubled or misplaced term (about sum / cols).
constexpr double kRelTol = 1e-5;

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

// Runs MatMul on columns [row_begin, row_end) of Y and checks them against the reference;
// other columns must keep their sentinel. X is offset by `misalign` floats.
void CheckMatMul(const TestMatrix& m, size_t T, size_t misalign, bool with_bias,
                 bool caller_scratch, size_t row_begin, size_t row_end, uint32_t seed) {
  const WeightView& w = m.view;
  const std::vector<float> x_storage = RandomVector(T * w.cols + misalign, seed);
  const float* X = x_storage.data() + misalign;
  const std::vector<float> bias_storage = RandomVector(w.rows, seed + 1);
  const float* bias = with_bias ? bias_storage.data() : nullptr;
  constexpr float kSentinel = 12345.0f;
  std::vector<float> Y(T * w.rows, kSentinel);
  std::vector<float> expected(T * w.rows, kSentinel);
  std::vector<float> scratch(caller_scratch ? MatMulScratchFloats(w.cols) : 0);
  MatMul(w, X, T, bias, Y.data(), row_begin, row_end, caller_scratch ? scratch.data() : nullptr);
  ref::MatMul(w, X, T, bias, expected.data(), row_begin, row_end);
  double worst = 0.0;  // Largest error / tolerance seen.
  size_t untouched_violations = 0;
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < w.rows; ++r) {
      const size_t i = t * w.rows + r;
      if (r < row_begin || r >= row_end) {
        untouched_violations += Y[i] != kSentinel;
        continue;
      }
      double scale = bias != nullptr ? std::fabs(bias[r]) : 0.0;
      for (size_t c = 0; c < w.cols; ++c) scale += std::fabs(WeightAt(w, r, c) * X[t * w.cols + c]);
      const double tol = kRelTol * scale + 1e-30;
      worst = std::max(worst, std::fabs(static_cast<double>(Y[i]) - expected[i]) / tol);
    }
  }
  CAPTURE(std::string(TypeName(w.type)));
  CAPTURE(T);
  CAPTURE(w.rows);
  CAPTURE(w.cols);
  CAPTURE(row_begin);
  CAPTURE(row_end);
  CAPTURE(misalign);
  CAPTURE(with_bias);
  CHECK(untouched_violations == 0);
  CHECK(worst <= 1.0);
}

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

struct Case {
  size_t T, rows, cols;
};

// Token counts around the 4-, 6- and 8-token tiles; rows around every target's micro-panel
// widths (8, 16, 32, 48 rows); columns around lanes and the 256-column slices.
const Case kDenseCases[] = {{0, 5, 7},    {1, 1, 1},     {1, 17, 33},  {2, 3, 0},    {3, 47, 16},
                            {5, 49, 17},  {6, 16, 255},  {7, 48, 256}, {8, 97, 257}, {9, 33, 100},
                            {13, 50, 63}, {17, 96, 513}, {24, 1, 300}, {33, 65, 31}, {4, 8, 1}};
const Case kQ8Cases[] = {{1, 1, 32},   {3, 17, 64}, {7, 48, 256}, {9, 49, 288},
                         {8, 33, 544}, {17, 5, 96}, {2, 0, 32}};

void CheckCases(WeightType type) {
  uint32_t seed = 100;
  auto run = [&](const Case& c) {
    for (size_t misalign : {0, 1}) {
      const TestMatrix m = MakeMatrix(type, ScaleType::kF16, c.rows, c.cols, misalign, seed++);
      CheckMatMul(m, c.T, misalign, misalign == 0, misalign == 1, 0, c.rows, seed++);
      CheckMatMul(m, c.T, misalign, misalign == 1, misalign == 0, 0, c.rows, seed++);
      if (c.rows > 4) CheckMatMul(m, c.T, misalign, true, false, 1, c.rows - 2, seed++);
    }
  };
  if (type == WeightType::kQ8_0) {
    for (const Case& c : kQ8Cases) run(c);
  } else {
    for (const Case& c : kDenseCases) run(c);
  }
}

TEST_CASE("MatMul f32 matches the reference on every target") {
  ForEachTarget([] { CheckCases(WeightType::kF32); });
}

TEST_CASE("MatMul f16 matches the reference on every target") {
  ForEachTarget([] { CheckCases(WeightType::kF16); });
}

TEST_CASE("MatMul bf16 matches the reference on every target") {
  ForEachTarget([] { CheckCases(WeightType::kBF16); });
}

TEST_CASE("MatMul q8_0 matches the reference on every target") {
  ForEachTarget([] { CheckCases(WeightType::kQ8_0); });
}

TEST_CASE("MatMul crosses 512-row panels and sub-ranges that split micro-panels") {
  ForEachTarget([] {
    for (WeightType type : {WeightType::kF32, WeightType::kQ8_0}) {
      const TestMatrix m = MakeMatrix(type, ScaleType::kF16, 1100, 64, 1, 5);
      CheckMatMul(m, 10, 1, true, true, 0, 1100, 6);
      CheckMatMul(m, 10, 0, false, false, 37, 1061, 7);
    }
  });
}

TEST_CASE("MatMul with an empty row range or no tokens writes nothing") {
  const TestMatrix m = MakeMatrix(WeightType::kF32, ScaleType::kF16, 4, 8, 0, 3);
  const std::vector<float> X = RandomVector(16, 4);
  std::vector<float> Y(8, -1.0f);
  MatMul(m.view, X.data(), 2, nullptr, Y.data(), 3, 3, nullptr);
  MatMul(m.view, X.data(), 0, nullptr, Y.data(), 0, 4, nullptr);
  for (float v : Y) CHECK(v == -1.0f);
}

TEST_CASE("MatMulScratchFloats covers a whole panel plus alignment") {
  CHECK(MatMulScratchFloats(0) >= 16);
  CHECK(MatMulScratchFloats(100) >= 512 * 100);
  CHECK(MatMulScratchFloats(100000) == MatMulScratchFloats(256));
}

}  // namespace
}  // namespace recur::ops
