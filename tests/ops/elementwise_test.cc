// Tests ops/elementwise.h against ops/reference/elementwise.h on every compiled SIMD target.
#include "ops/elementwise.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "ops/reference/elementwise.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::Buffer;
using testing::CountMismatches;
using testing::ForEachTarget;
using testing::kSizes;
using testing::kUlp;
using testing::RandomIntegers;
using testing::RandomVector;

TEST_CASE("Add, Mul and Scale match the reference exactly (one rounding each)") {
  ForEachTarget([](const std::string&) {
    for (size_t offset : {0, 1}) {
      for (size_t n : kSizes) {
        CAPTURE(n);
        CAPTURE(offset);
        const std::vector<float> a = RandomVector(n, -4.0f, 4.0f, 1 + n);
        const std::vector<float> b = RandomVector(n, -4.0f, 4.0f, 2 + n);
        Buffer ba(n, offset), bb(n, offset), out(n, offset);
        ba.CopyFrom(a);
        bb.CopyFrom(b);
        std::vector<float> want(n);
        const auto exact = [](size_t) { return 0.0; };

        Add(ba.data(), bb.data(), out.data(), n);
        ref::Add(a.data(), b.data(), want.data(), n);
        CHECK(CountMismatches(out.data(), want.data(), n, exact, "Add") == 0);
        CHECK(out.GuardIntact());

        Mul(ba.data(), bb.data(), out.data(), n);
        ref::Mul(a.data(), b.data(), want.data(), n);
        CHECK(CountMismatches(out.data(), want.data(), n, exact, "Mul") == 0);

        Scale(ba.data(), -1.7f, out.data(), n);
        ref::Scale(a.data(), -1.7f, want.data(), n);
        CHECK(CountMismatches(out.data(), want.data(), n, exact, "Scale") == 0);
        CHECK(out.GuardIntact());

        // In place: out is the first input.
        Add(ba.data(), bb.data(), ba.data(), n);
        ref::Add(a.data(), b.data(), want.data(), n);
        CHECK(CountMismatches(ba.data(), want.data(), n, exact, "Add in place") == 0);
        CHECK(ba.GuardIntact());
      }
    }
  });
}

TEST_CASE("AddScaled matches the reference within one rounding of the FMA") {
  ForEachTarget([](const std::string&) {
    for (size_t offset : {0, 1}) {
      for (size_t n : kSizes) {
        CAPTURE(n);
        const std::vector<float> x = RandomVector(n, -4.0f, 4.0f, 3 + n);
        const std::vector<float> y0 = RandomVector(n, -4.0f, 4.0f, 4 + n);
        const float s = 0.37f;
        Buffer bx(n, offset), by(n, offset);
        bx.CopyFrom(x);
        by.CopyFrom(y0);
        std::vector<float> want = y0;
        AddScaled(bx.data(), s, by.data(), n);
        ref::AddScaled(x.data(), s, want.data(), n);
        // The reference rounds s*x and then the sum; an FMA rounds once. They differ by at most
        // one rounding of s*x plus one of the sum: 1 ulp of |s x| + |y| each side.
        const auto tol = [&](size_t i) {
          return 2 * 2 * kUlp * (std::fabs(s * x[i]) + std::fabs(y0[i]));
        };
        CHECK(CountMismatches(by.data(), want.data(), n, tol, "AddScaled") == 0);
        CHECK(by.GuardIntact());
      }
    }
  });
}

TEST_CASE("Dot and Sum are exact on small integers and accurate on reals") {
  ForEachTarget([](const std::string&) {
    for (size_t offset : {0, 1}) {
      for (size_t n : kSizes) {
        CAPTURE(n);
        CAPTURE(offset);
        // Exactly representable partial sums: any summation order gives the exact result, so a
        // dropped, doubled or misread element (including a garbage tail lane) cannot hide.
        const std::vector<float> ia = RandomIntegers(n, -8, 8, 5 + n);
        const std::vector<float> ib = RandomIntegers(n, -8, 8, 6 + n);
        Buffer ba(n, offset), bb(n, offset);
        ba.CopyFrom(ia);
        bb.CopyFrom(ib);
        CHECK(Dot(ba.data(), bb.data(), n) == ref::Dot(ia.data(), ib.data(), n));
        CHECK(Sum(ba.data(), n) == ref::Sum(ia.data(), n));

        const std::vector<float> a = RandomVector(n, -1.0f, 1.0f, 7 + n);
        const std::vector<float> b = RandomVector(n, -1.0f, 1.0f, 8 + n);
        ba.CopyFrom(a);
        bb.CopyFrom(b);
        double abs_dot = 0.0, abs_sum = 0.0;
        for (size_t i = 0; i < n; ++i) {
          abs_dot += std::fabs(static_cast<double>(a[i]) * b[i]);
          abs_sum += std::fabs(a[i]);
        }
        // Dot: each of 4 accumulators per lane adds at most n/4 products, plus the horizontal sum
        // and the product roundings: error <= (n/4 + 8) * 2^-24 * sum|a b| even for one lane.
        const double dot_tol = (static_cast<double>(n) / 4 + 8) * kUlp * abs_dot;
        CHECK(std::fabs(Dot(ba.data(), bb.data(), n) - ref::Dot(a.data(), b.data(), n)) <=
              dot_tol + 1e-30);
        // Sum: Kahan keeps the error at ~2 ulp of sum|x| regardless of n; allow 4 plus the final
        // rounding of the reference.
        const float want_sum = ref::Sum(a.data(), n);
        CHECK(std::fabs(Sum(ba.data(), n) - want_sum) <=
              4 * kUlp * abs_sum + 2 * kUlp * std::fabs(want_sum));
      }
    }
  });
}

TEST_CASE("Sum stays accurate where plain f32 accumulation drifts") {
  // 2^20 copies of 0.1f: a naive running f32 sum is off by percent; Kahan is within a few ulp.
  const size_t n = size_t{1} << 20;
  std::vector<float> x(n, 0.1f);
  const double want = static_cast<double>(0.1f) * n;
  ForEachTarget(
      [&](const std::string&) { CHECK(std::fabs(Sum(x.data(), n) - want) <= 4 * kUlp * want); });
}

TEST_CASE("MaxValue finds the maximum anywhere, ignores the masked tail, and is -inf when empty") {
  ForEachTarget([](const std::string&) {
    CHECK(MaxValue(nullptr, 0) == -std::numeric_limits<float>::infinity());
    for (size_t offset : {0, 1}) {
      for (size_t n : kSizes) {
        if (n == 0) continue;
        CAPTURE(n);
        // All negative: a tail lane read as 0 would win.
        std::vector<float> x = RandomVector(n, -9.0f, -1.0f, 9 + n);
        Buffer bx(n, offset);
        for (size_t pos : {size_t{0}, n / 2, n - 1}) {
          std::vector<float> y = x;
          y[pos] = -0.5f;
          bx.CopyFrom(y);
          CHECK(MaxValue(bx.data(), n) == -0.5f);
          CHECK(MaxValue(bx.data(), n) == ref::MaxValue(y.data(), n));
        }
      }
    }
  });
}

TEST_CASE("Element-wise kernels read and write nothing past the end (guard page)") {
  ForEachTarget([](const std::string&) {
    for (size_t n : {1, 3, 5, 7, 9, 15, 17, 33, 101}) {
      CAPTURE(n);
      testing::PageGuardedArray<float> a(n), b(n), out(n);
      for (size_t i = 0; i < n; ++i) {
        a[i] = static_cast<float>(i) - 3.0f;
        b[i] = 0.5f * static_cast<float>(i);
      }
      Add(a.data(), b.data(), out.data(), n);
      CHECK(out[n - 1] == a[n - 1] + b[n - 1]);
      Mul(a.data(), b.data(), out.data(), n);
      Scale(a.data(), 2.0f, out.data(), n);
      AddScaled(a.data(), 2.0f, out.data(), n);
      CHECK(out[n - 1] == 4.0f * a[n - 1]);
      CHECK(Dot(a.data(), b.data(), n) == ref::Dot(a.data(), b.data(), n));
      CHECK(Sum(a.data(), n) == ref::Sum(a.data(), n));
      CHECK(MaxValue(a.data(), n) == a[n - 1]);
    }
  });
}

}  // namespace
}  // namespace recur::ops
