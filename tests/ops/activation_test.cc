// Tests ops/activation.h against ops/reference/activation.h (double precision) on every compiled
// SIMD target, over random inputs at awkward sizes and alignments and over the extreme ranges.
#include "ops/activation.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/reference/activation.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::Buffer;
using testing::CountMismatches;
using testing::ForEachTarget;
using testing::kSizes;
using testing::kUlp;
using testing::RandomVector;

using UnaryFn = void (*)(const float*, float*, size_t);
using InPlaceFn = void (*)(float*, size_t);

struct Activation {
  const char* name;
  UnaryFn simd;
  InPlaceFn simd_in_place;
  UnaryFn ref;
  // Allowed relative error against the double-precision reference, in units of kUlp (2^-24).
  // Measured maxima over the test ranges are in the comments; the bounds leave 2x headroom.
  double rel_ulps;
  // Allowed absolute error per unit of max(1, |x|). Zero except for GeluErf, whose
  // 0.5 x (1 + erf) cancels for negative x (torch computes it the same way).
  double abs_per_x;
  // Extra relative error (in kUlp) that depends on x, for functions whose f32 evaluation is
  // ill-conditioned in places; null for none.
  double (*extra_ulps)(float x);
};

// GeluTanh is x * sigmoid(v) with v = 2 sqrt(2/pi) (x + 0.044715 x^3) formed in f32: v carries
// ~2 roundings, i.e. an absolute error of ~2|v| half-ulps, and sigmoid(v) ~ exp(v) for negative v
// turns that into a relative error of the same size (up to ~200 ulp at x = -10, where the result
// is 1e-37). Any f32 implementation, torch's included, has this conditioning; allow 4|v|.
double GeluTanhArgUlps(float x) {
  const double v = 1.5957691216057308 * (x + 0.044715 * x * x * x);
  return v < 0 ? 4.0 * -v : 0.0;
}

const Activation kActivations[] = {
    {"Exp", Exp, ExpInPlace, ref::Exp, 4, 0, nullptr},  // hn::Exp: 1 ulp; measured 2.
    {"Sigmoid", Sigmoid, SigmoidInPlace, ref::Sigmoid, 8, 0, nullptr},  // Measured 4.
    {"SiLU", SiLU, SiLUInPlace, ref::SiLU, 8, 0, nullptr},  // Measured 4 (normal range).
    {"Softplus", Softplus, SoftplusInPlace, ref::Softplus, 8, 0, nullptr},  // Measured 4.
    {"Tanh", Tanh, TanhInPlace, ref::Tanh, 9, 0, nullptr},  // hn::Tanh: 4 ulp; measured 4.3.
    {"Elu", Elu, EluInPlace, ref::Elu, 8, 0, nullptr},      // hn::Expm1: 4 ulp; measured 2.
    {"Relu", Relu, ReluInPlace, ref::Relu, 0, 0, nullptr},  // Exact.
    {"GeluTanh", GeluTanh, GeluTanhInPlace, ref::GeluTanh, 8, 0, GeluTanhArgUlps},
    // Rational erf: |error| < 4e-7 absolute; measured 2.4e-7 * max(1, |x|) on the output.
    {"GeluErf", GeluErf, GeluErfInPlace, ref::GeluErf, 8, 5e-7, nullptr},
};

// Results whose exact value is below FLT_MIN are subnormal and carry few significant bits, so
// relative error is meaningless there; 1e-40 * max(1, |x|) is ~70 subnormal ulps.
constexpr double kSubnormalFloor = 1e-40;

size_t Check(const Activation& act, const float* x, const float* got, size_t n) {
  std::vector<float> want(n);
  act.ref(x, want.data(), n);
  return CountMismatches(
      got, want.data(), n,
      [&](size_t i) {
        const double scale = std::max(1.0, static_cast<double>(std::fabs(x[i])));
        const double ulps = act.rel_ulps + (act.extra_ulps ? act.extra_ulps(x[i]) : 0.0);
        return ulps * kUlp * std::fabs(want[i]) + act.abs_per_x * scale + kSubnormalFloor * scale;
      },
      std::string(act.name).c_str());
}

TEST_CASE("Activations match the double-precision reference at every size and alignment") {
  ForEachTarget([](const std::string&) {
    for (const Activation& act : kActivations) {
      const std::string name = act.name;
      CAPTURE(name);
      for (size_t offset : {0, 1}) {
        for (size_t n : kSizes) {
          CAPTURE(n);
          CAPTURE(offset);
          const std::vector<float> x = RandomVector(n, -12.0f, 12.0f, 11 + n);
          Buffer bx(n, offset), out(n, offset);
          bx.CopyFrom(x);
          act.simd(bx.data(), out.data(), n);
          CHECK(Check(act, x.data(), out.data(), n) == 0);
          CHECK(out.GuardIntact());
          // In place gives the same bits.
          act.simd_in_place(bx.data(), n);
          CHECK(std::equal(bx.data(), bx.data() + n, out.data(),
                           [](float a, float b) { return a == b || (a != a && b != b); }));
          CHECK(bx.GuardIntact());
        }
      }
    }
  });
}

// A dense sweep of [-120, 120] (Exp from deep underflow to overflow) plus special values.
std::vector<float> SweepInputs() {
  std::vector<float> x;
  for (double v = -120.0; v <= 120.0; v += 0.0031) x.push_back(static_cast<float>(v));
  for (double v = -3.0; v <= 3.0; v += 1e-4) x.push_back(static_cast<float>(v));
  const float kInf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f,
                  -0.0f,
                  1e-30f,
                  -1e-30f,
                  1e-40f,
                  -1e-40f,
                  1e30f,
                  -1e30f,
                  19.999f,
                  20.0f,
                  20.0001f,
                  88.0f,
                  88.72f,
                  88.73f,
                  89.0f,
                  103.9f,
                  104.0f,
                  104.1f,
                  200.0f,
                  1000.0f,
                  -87.0f,
                  -87.4f,
                  -90.0f,
                  -103.9f,
                  -104.0f,
                  -104.1f,
                  -200.0f,
                  -1000.0f,
                  std::numeric_limits<float>::max(),
                  -std::numeric_limits<float>::max(),
                  kInf}) {
    x.push_back(v);
  }
  return x;
}

TEST_CASE("Activations stay accurate over extreme ranges without spurious NaN or Inf") {
  const std::vector<float> x = SweepInputs();
  const size_t n = x.size();
  ForEachTarget([&](const std::string&) {
    for (const Activation& act : kActivations) {
      const std::string name = act.name;
      CAPTURE(name);
      std::vector<float> got(n);
      act.simd(x.data(), got.data(), n);
      CHECK(Check(act, x.data(), got.data(), n) == 0);
      size_t spurious = 0;
      for (size_t i = 0; i < n; ++i) {
        // Every input here is a non-NaN number; only Exp may overflow, and only past ln(FLT_MAX).
        const bool bad = std::isnan(got[i]) || (std::isinf(got[i]) && !std::isinf(x[i]) &&
                                                !(act.simd == Exp && x[i] > 88.72f));
        spurious += bad ? 1 : 0;
      }
      CHECK(spurious == 0);
    }
  });
}

TEST_CASE("Activation limits: exp over/underflow, softplus and sigmoid tails, NaN propagation") {
  ForEachTarget([](const std::string&) {
    const float kInf = std::numeric_limits<float>::infinity();
    const float kNaN = std::numeric_limits<float>::quiet_NaN();
    float in[8] = {-100.0f, 88.0f, 89.0f, 1e10f, kInf, -kInf, kNaN, -104.5f};
    float out[8];
    Exp(in, out, 8);
    CHECK(out[0] > 0.0f);  // exp(-100) = 3.7e-44 is a (positive) subnormal, not 0.
    CHECK(out[0] < 1e-43f);
    CHECK(std::isfinite(out[1]));
    CHECK(out[2] == kInf);
    CHECK(out[3] == kInf);  // Beyond hn::Exp's valid range: must not wrap around.
    CHECK(out[4] == kInf);
    CHECK(out[5] == 0.0f);
    CHECK(std::isnan(out[6]));
    CHECK(out[7] == 0.0f);

    float big[6] = {-1e4f, -200.0f, 30.0f, 1e4f, kInf, kNaN};
    Softplus(big, out, 6);
    CHECK(out[0] == 0.0f);
    CHECK(out[1] == 0.0f);
    CHECK(out[2] == 30.0f);  // Above the threshold: x itself.
    CHECK(out[3] == 1e4f);
    CHECK(out[4] == kInf);
    CHECK(std::isnan(out[5]));
    Sigmoid(big, out, 6);
    CHECK(out[0] == 0.0f);
    CHECK(out[3] == 1.0f);
    CHECK(out[4] == 1.0f);
    CHECK(std::isnan(out[5]));
    SiLU(big, out, 6);
    CHECK(out[0] == 0.0f);
    CHECK(out[3] == 1e4f);
    CHECK(std::isnan(out[5]));

    // Softplus just below the threshold is log1p(exp(x)), which is x + 2e-9 and rounds to x.
    float th[2] = {19.5f, -19.5f};
    Softplus(th, out, 2);
    CHECK(out[0] == 19.5f);
    CHECK(out[1] == doctest::Approx(std::exp(-19.5)).epsilon(1e-6));

    for (const Activation& act : kActivations) {
      const std::string name = act.name;
      CAPTURE(name);
      float nan_in = kNaN;
      float nan_out = 0.0f;
      act.simd(&nan_in, &nan_out, 1);
      CHECK(std::isnan(nan_out));
    }
  });
}

TEST_CASE("MulSiLU is a * SiLU(gate), in place on either input") {
  ForEachTarget([](const std::string&) {
    for (size_t offset : {0, 1}) {
      for (size_t n : kSizes) {
        CAPTURE(n);
        const std::vector<float> a = RandomVector(n, -3.0f, 3.0f, 21 + n);
        const std::vector<float> g = RandomVector(n, -12.0f, 12.0f, 22 + n);
        Buffer ba(n, offset), bg(n, offset), out(n, offset);
        ba.CopyFrom(a);
        bg.CopyFrom(g);
        std::vector<float> want(n);
        ref::MulSiLU(a.data(), g.data(), want.data(), n);
        // SiLU's 8 ulp (see above) plus the product's rounding.
        const auto tol = [&](size_t i) { return 10 * kUlp * std::fabs(want[i]) + 1e-40; };
        MulSiLU(ba.data(), bg.data(), out.data(), n);
        CHECK(CountMismatches(out.data(), want.data(), n, tol, "MulSiLU") == 0);
        CHECK(out.GuardIntact());
        MulSiLU(ba.data(), bg.data(), bg.data(), n);
        CHECK(CountMismatches(bg.data(), want.data(), n, tol, "MulSiLU into gate") == 0);
        CHECK(bg.GuardIntact());
      }
    }
  });
}

TEST_CASE("Activations read and write nothing past the end (guard page)") {
  ForEachTarget([](const std::string&) {
    for (size_t n : {1, 3, 7, 15, 17, 33}) {
      CAPTURE(n);
      testing::PageGuardedArray<float> x(n), out(n);
      for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i) - 4.0f;
      for (const Activation& act : kActivations) {
        act.simd(x.data(), out.data(), n);
        CHECK(Check(act, x.data(), out.data(), n) == 0);
      }
      MulSiLU(x.data(), x.data(), out.data(), n);
      CHECK(std::isfinite(out[n - 1]));
    }
  });
}

}  // namespace
}  // namespace recur::ops
