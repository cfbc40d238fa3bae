// Tests ops/norm.h against ops/reference/norm.h (double precision) on every compiled SIMD target.
#include "ops/norm.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/reference/norm.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::Buffer;
using testing::CountMismatches;
using testing::ForEachTarget;
using testing::kSizes;
using testing::kUlp;
using testing::RandomVector;

bool SameBits(const float* a, const float* b, size_t n) {
  return std::equal(a, a + n, b, [](float x, float y) { return x == y || (x != x && y != y); });
}

// Per-element tolerance for (x - mean) * rstd * w + b against the double reference: the f32
// kernel rounds mean (0.5 ulp of |mean|), x - mean, the two products and the add (FMA), each
// half an ulp of the magnitude involved, and rstd carries ~1 ulp. 8 half-ulps of the terms' sizes
// covers that with 2x headroom; it is ~5e-7 relative where nothing cancels.
std::vector<double> AffineTolerance(const float* x, const float* w, const float* b, size_t n,
                                    size_t group_size, bool centred) {
  std::vector<double> tol(n);
  for (size_t g0 = 0; g0 < n; g0 += group_size) {
    double mean = 0.0, sum_sq = 0.0;
    for (size_t i = g0; i < g0 + group_size; ++i) mean += x[i];
    mean = centred ? mean / static_cast<double>(group_size) : 0.0;
    for (size_t i = g0; i < g0 + group_size; ++i) sum_sq += (x[i] - mean) * (x[i] - mean);
    const double rstd = 1.0 / std::sqrt(sum_sq / static_cast<double>(group_size) + 1e-5);
    for (size_t i = g0; i < g0 + group_size; ++i) {
      const double wi = w != nullptr ? std::fabs(w[i]) : 1.0;
      const double bi = b != nullptr ? std::fabs(b[i]) : 0.0;
      tol[i] = 8 * kUlp * ((std::fabs(x[i] - mean) + std::fabs(mean)) * rstd * wi + bi);
    }
  }
  return tol;
}

TEST_CASE("RMSNorm matches the reference, with and without weight, in and out of place") {
  ForEachTarget([](const std::string&) {
    for (size_t offset : {0, 1}) {
      for (size_t n : kSizes) {
        CAPTURE(n);
        CAPTURE(offset);
        const std::vector<float> x = RandomVector(n, -3.0f, 3.0f, 31 + n);
        const std::vector<float> w = RandomVector(n, 0.5f, 1.5f, 32 + n);
        Buffer bx(n, offset), bw(n, offset), out(n, offset);
        bx.CopyFrom(x);
        bw.CopyFrom(w);
        for (const float* weight :
             {static_cast<const float*>(bw.data()), static_cast<const float*>(nullptr)}) {
          std::vector<float> want(n);
          ref::RMSNorm(x.data(), weight != nullptr ? w.data() : nullptr, 1e-5f, want.data(), n);
          RMSNorm(bx.data(), weight, 1e-5f, out.data(), n);
          const std::vector<double> tol =
              AffineTolerance(x.data(), weight != nullptr ? w.data() : nullptr, nullptr, n,
                              std::max<size_t>(n, 1), false);
          CHECK(CountMismatches(
                    out.data(), want.data(), n, [&](size_t i) { return tol[i]; }, "RMSNorm") == 0);
          CHECK(out.GuardIntact());
        }
        // In place gives the same bits as out of place.
        RMSNorm(bx.data(), bw.data(), 1e-5f, out.data(), n);
        RMSNorm(bx.data(), bw.data(), 1e-5f, bx.data(), n);
        CHECK(SameBits(bx.data(), out.data(), n));
        CHECK(bx.GuardIntact());
      }
    }
  });
}

TEST_CASE("LayerNorm matches the reference for every weight/bias combination") {
  ForEachTarget([](const std::string&) {
    for (size_t offset : {0, 1}) {
      for (size_t n : kSizes) {
        CAPTURE(n);
        CAPTURE(offset);
        const std::vector<float> x = RandomVector(n, -2.0f, 4.0f, 41 + n);
        const std::vector<float> w = RandomVector(n, 0.5f, 1.5f, 42 + n);
        const std::vector<float> b = RandomVector(n, -1.0f, 1.0f, 43 + n);
        Buffer bx(n, offset), bw(n, offset), bb(n, offset), out(n, offset);
        bx.CopyFrom(x);
        bw.CopyFrom(w);
        bb.CopyFrom(b);
        for (int mask = 0; mask < 4; ++mask) {
          CAPTURE(mask);
          const bool has_w = (mask & 1) != 0, has_b = (mask & 2) != 0;
          std::vector<float> want(n);
          ref::LayerNorm(x.data(), has_w ? w.data() : nullptr, has_b ? b.data() : nullptr, 1e-5f,
                         want.data(), n);
          LayerNorm(bx.data(), has_w ? bw.data() : nullptr, has_b ? bb.data() : nullptr, 1e-5f,
                    out.data(), n);
          const std::vector<double> tol =
              AffineTolerance(x.data(), has_w ? w.data() : nullptr, has_b ? b.data() : nullptr, n,
                              std::max<size_t>(n, 1), true);
          CHECK(CountMismatches(
                    out.data(), want.data(), n, [&](size_t i) { return tol[i]; }, "LayerNorm") ==
                0);
          CHECK(out.GuardIntact());
        }
      }
    }
  });
}

TEST_CASE("LayerNorm is stable for a large mean and a tiny spread (two-pass variance)") {
  // E[x^2] - E[x]^2 would lose every significant bit here: mean 1000, spread 1e-3.
  const size_t n = 4099;
  std::vector<float> x = RandomVector(n, -1e-3f, 1e-3f, 51);
  for (float& v : x) v += 1000.0f;
  std::vector<float> want(n), got(n);
  ref::LayerNorm(x.data(), nullptr, nullptr, 0.0f, want.data(), n);
  ForEachTarget([&](const std::string&) {
    LayerNorm(x.data(), nullptr, nullptr, 0.0f, got.data(), n);
    // The inputs themselves only carry ~1e-4 relative resolution of their deviation from the
    // mean (ulp(1000) = 6e-5 against a spread of 1e-3), and the f32 mean is rounded to ulp(1000)
    // / 2, which shifts every output by up to 3e-5 / 5.8e-4 = 0.05 standard deviations; so the
    // bound is absolute: 0.06 on outputs of size ~1.7.
    CHECK(CountMismatches(
              got.data(), want.data(), n, [](size_t) { return 0.06; }, "LayerNorm") == 0);
    double sum = 0.0, sum_sq = 0.0;
    for (float v : got) {
      sum += v;
      sum_sq += static_cast<double>(v) * v;
    }
    CHECK(std::fabs(sum / n) < 0.06);           // Centred...
    CHECK(std::fabs(sum_sq / n - 1.0) < 0.01);  // ...and scaled to unit variance.
  });
}

TEST_CASE("GroupNorm normalises each group separately with a per-channel affine") {
  ForEachTarget([](const std::string&) {
    for (size_t offset : {0, 1}) {
      for (size_t groups : {1, 3, 8}) {
        for (size_t group_size : {1, 5, 16, 64, 67}) {
          CAPTURE(groups);
          CAPTURE(group_size);
          const size_t n = groups * group_size;
          std::vector<float> x = RandomVector(n, -2.0f, 2.0f, 61 + n);
          // Give each group its own offset so a kernel that mixes groups fails.
          for (size_t i = 0; i < n; ++i) x[i] += 3.0f * static_cast<float>(i / group_size);
          const std::vector<float> w = RandomVector(n, 0.5f, 1.5f, 62 + n);
          const std::vector<float> b = RandomVector(n, -1.0f, 1.0f, 63 + n);
          Buffer bx(n, offset), bw(n, offset), bb(n, offset), out(n, offset);
          bx.CopyFrom(x);
          bw.CopyFrom(w);
          bb.CopyFrom(b);
          std::vector<float> want(n);
          // RWKV's ln_x eps (64e-5).
          ref::GroupNorm(x.data(), groups, group_size, w.data(), b.data(), 64e-5f, want.data());
          GroupNorm(bx.data(), groups, group_size, bw.data(), bb.data(), 64e-5f, out.data());
          const std::vector<double> tol =
              AffineTolerance(x.data(), w.data(), b.data(), n, group_size, true);
          CHECK(CountMismatches(
                    out.data(), want.data(), n, [&](size_t i) { return tol[i]; }, "GroupNorm") ==
                0);
          CHECK(out.GuardIntact());
        }
      }
    }
  });
}

TEST_CASE("GatedRMSNorm matches the reference in both gate orders, grouped and not") {
  ForEachTarget([](const std::string&) {
    for (size_t offset : {0, 1}) {
      for (size_t group_size : {1, 7, 16, 33, 64}) {
        for (size_t groups : {1, 2, 8}) {
          const size_t n = groups * group_size;
          CAPTURE(n);
          CAPTURE(group_size);
          const std::vector<float> y = RandomVector(n, -3.0f, 3.0f, 71 + n);
          const std::vector<float> z = RandomVector(n, -6.0f, 6.0f, 72 + n);
          const std::vector<float> w = RandomVector(n, 0.5f, 1.5f, 73 + n);
          Buffer by(n, offset), bz(n, offset), bw(n, offset), out(n, offset);
          by.CopyFrom(y);
          bz.CopyFrom(z);
          bw.CopyFrom(w);
          for (bool norm_before_gate : {false, true}) {
            for (bool gated : {true, false}) {
              for (bool weighted : {true, false}) {
                CAPTURE(norm_before_gate);
                CAPTURE(gated);
                CAPTURE(weighted);
                std::vector<float> want(n);
                ref::GatedRMSNorm(y.data(), gated ? z.data() : nullptr,
                                  weighted ? w.data() : nullptr, group_size, 1e-5f,
                                  norm_before_gate, want.data(), n);
                GatedRMSNorm(by.data(), gated ? bz.data() : nullptr, weighted ? bw.data() : nullptr,
                             group_size, 1e-5f, norm_before_gate, out.data(), n);
                // SiLU's 8 half-ulps (see activation_test) on top of RMSNorm's 8.
                const auto tol = [&](size_t i) { return 16 * kUlp * std::fabs(want[i]) + 1e-37; };
                CHECK(CountMismatches(out.data(), want.data(), n, tol, "GatedRMSNorm") == 0);
                CHECK(out.GuardIntact());
              }
            }
          }
          // Output over y and over z (both allowed) give the same bits as out of place.
          for (bool norm_before_gate : {false, true}) {
            GatedRMSNorm(by.data(), bz.data(), bw.data(), group_size, 1e-5f, norm_before_gate,
                         out.data(), n);
            Buffer y2(n, offset), z2(n, offset);
            y2.CopyFrom(y);
            z2.CopyFrom(z);
            GatedRMSNorm(y2.data(), z2.data(), bw.data(), group_size, 1e-5f, norm_before_gate,
                         y2.data(), n);
            CHECK(SameBits(y2.data(), out.data(), n));
            y2.CopyFrom(y);
            GatedRMSNorm(y2.data(), z2.data(), bw.data(), group_size, 1e-5f, norm_before_gate,
                         z2.data(), n);
            CHECK(SameBits(z2.data(), out.data(), n));
          }
        }
      }
    }
  });
}

TEST_CASE("GatedRMSNorm keeps a short last group in bounds and normalises it on its own") {
  const size_t n = 10, group_size = 4;  // Groups of 4, 4 and 2.
  const std::vector<float> y = RandomVector(n, -3.0f, 3.0f, 75);
  const std::vector<float> z = RandomVector(n, -3.0f, 3.0f, 76);
  ForEachTarget([&](const std::string&) {
    Buffer out(n);
    std::vector<float> want(n);
    ref::GatedRMSNorm(y.data(), z.data(), nullptr, group_size, 1e-5f, false, want.data(), n);
    GatedRMSNorm(y.data(), z.data(), nullptr, group_size, 1e-5f, false, out.data(), n);
    const auto tol = [&](size_t i) { return 16 * kUlp * std::fabs(want[i]); };
    CHECK(CountMismatches(out.data(), want.data(), n, tol, "short last group") == 0);
    CHECK(out.GuardIntact());
  });
}

TEST_CASE("Row-batched norms equal the single-row kernels on strided rows") {
  const size_t rows = 5, n = 37, stride_in = 50, stride_out = 41, groups = 1;
  const std::vector<float> x = RandomVector(rows * stride_in, -2.0f, 2.0f, 81);
  const std::vector<float> z = RandomVector(rows * stride_in, -4.0f, 4.0f, 82);
  const std::vector<float> w = RandomVector(n, 0.5f, 1.5f, 83);
  const std::vector<float> b = RandomVector(n, -1.0f, 1.0f, 84);
  ForEachTarget([&](const std::string&) {
    std::vector<float> got(rows * stride_out, -7.0f), want(rows * stride_out, -7.0f);
    const auto check_rows = [&](const char* what) {
      CAPTURE(std::string(what));
      CHECK(SameBits(got.data(), want.data(), got.size()));  // Gaps between rows untouched too.
      std::fill(got.begin(), got.end(), -7.0f);
      std::fill(want.begin(), want.end(), -7.0f);
    };
    RMSNormRows(x.data(), stride_in, w.data(), 1e-6f, got.data(), stride_out, rows, n);
    for (size_t r = 0; r < rows; ++r) {
      RMSNorm(x.data() + r * stride_in, w.data(), 1e-6f, want.data() + r * stride_out, n);
    }
    check_rows("RMSNormRows");
    LayerNormRows(x.data(), stride_in, w.data(), b.data(), 1e-6f, got.data(), stride_out, rows, n);
    for (size_t r = 0; r < rows; ++r) {
      LayerNorm(x.data() + r * stride_in, w.data(), b.data(), 1e-6f, want.data() + r * stride_out,
                n);
    }
    check_rows("LayerNormRows");
    GroupNormRows(x.data(), stride_in, groups, n, w.data(), b.data(), 1e-6f, got.data(), stride_out,
                  rows);
    for (size_t r = 0; r < rows; ++r) {
      GroupNorm(x.data() + r * stride_in, groups, n, w.data(), b.data(), 1e-6f,
                want.data() + r * stride_out);
    }
    check_rows("GroupNormRows");
    GatedRMSNormRows(x.data(), stride_in, z.data(), stride_in, w.data(), n, 1e-6f, false,
                     got.data(), stride_out, rows, n);
    for (size_t r = 0; r < rows; ++r) {
      GatedRMSNorm(x.data() + r * stride_in, z.data() + r * stride_in, w.data(), n, 1e-6f, false,
                   want.data() + r * stride_out, n);
    }
    check_rows("GatedRMSNormRows");
  });
}

}  // namespace
}  // namespace recur::ops
