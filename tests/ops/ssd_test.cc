// Tests ops/ssd.h: a known answer, the step kernel against the double-precision recurrence, the
// chunked scan against the sequential one for many chunk sizes (T not a multiple of the chunk),
// and the invariances the runtime relies on (head and item ranges, split prefills, steps).
#include "ops/ssd.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/reference/ssd.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::ForEachTarget;

// Relative tolerance of the f32 kernels against the double recurrence, measured against the sum
// of the absolute values of every term that makes up an output (see Magnitudes): each output is
// a sum of at most chunk + d_state + 1 f32 products per chunk plus exps of a few ulp, so the
// worst case is ~(64 + 33 + 8) * 2^-24 ~ 6e-6 of that magnitude; the measured worst is below
// 1e-6 (the test prints it).
constexpr double kRelTol = 1e-5;

// Decay regimes: "fast" forgets within a few tokens (dt A down to about -20 per token), "slow"
// keeps almost everything for the whole sequence (dt A ~ -1e-4), which is where the difference
// of two cumulative sums would lose all precision and state errors would pile up.
enum class Regime { kFast, kSlow };

// One layer's inputs for T tokens, packed as the Mamba-2 block packs them: each row holds
// [x (H P) | B (G N) | C (G N) | 3 unused], dt rows are [H + 1] wide, and y rows have one
// unused float past H P that the kernels must not touch.
struct Problem {
  SsdDims dims;
  size_t T = 0;
  size_t row = 0;
  std::vector<float> xbc, dt, A, D, state0;

  Problem(SsdDims d, size_t t, Regime regime, uint32_t seed) : dims(d), T(t) {
    const size_t H = d.n_heads, P = d.head_dim, N = d.d_state, G = d.n_groups;
    row = H * P + 2 * G * N + 3;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    xbc.resize(T * row);
    for (float& v : xbc) v = unit(rng);
    dt.resize(T * (H + 1));
    A.resize(H);
    D.resize(H);
    std::uniform_real_distribution<float> u01(0.0f, 1.0f);
    for (float& v : dt) {
      v = regime == Regime::kFast ? std::log1p(std::exp(-4.0f + 5.0f * u01(rng)))
                                  : 1e-3f + 9e-3f * u01(rng);
    }
    for (size_t h = 0; h < H; ++h) {
      A[h] = regime == Regime::kFast ? -std::exp(std::log(16.0f) * u01(rng))
                                     : -(0.01f + 0.09f * u01(rng));
      D[h] = unit(rng);
    }
    state0.resize(H * P * N);
    for (float& v : state0) v = unit(rng);
  }

  size_t y_stride() const { return dims.n_heads * dims.head_dim + 1; }

  SsdInputs Inputs(size_t t0 = 0) const {
    const size_t HP = dims.n_heads * dims.head_dim, GN = dims.n_groups * dims.d_state;
    SsdInputs in;
    in.x = xbc.data() + t0 * row;
    in.x_stride = row;
    in.B = xbc.data() + t0 * row + HP;
    in.C = xbc.data() + t0 * row + HP + GN;
    in.bc_stride = row;
    in.dt = dt.data() + t0 * (dims.n_heads + 1);
    in.dt_stride = dims.n_heads + 1;
    in.A = A.data();
    in.D = D.data();
    return in;
  }

  // The same problem with x, B, C, D and the start state replaced by their absolute values:
  // every term of the recurrence is then non-negative, so its outputs are the sums of the
  // absolute values of the terms of the original outputs, the scale of their rounding errors.
  Problem Magnitudes() const {
    Problem abs = *this;
    for (float& v : abs.xbc) v = std::fabs(v);
    for (float& v : abs.D) v = std::fabs(v);
    for (float& v : abs.state0) v = std::fabs(v);
    return abs;
  }
};

struct Outputs {
  std::vector<float> y, state;
};

Outputs Reference(const Problem& pb) {
  Outputs out{std::vector<float>(pb.T * pb.y_stride(), 0.0f), pb.state0};
  ref::SsdScan(pb.dims, pb.Inputs(), pb.T, out.state.data(), out.y.data(), pb.y_stride());
  return out;
}

// The y guard column (index H P of each row) is set to a sentinel that must survive.
constexpr float kSentinel = -777.0f;

Outputs Chunked(const Problem& pb, size_t chunk) {
  Outputs out{std::vector<float>(pb.T * pb.y_stride(), kSentinel), pb.state0};
  std::vector<float> scratch(SsdPrefillScratchFloats(pb.dims, pb.T, chunk) + 1, kSentinel);
  SsdPrefill(pb.dims, pb.Inputs(), pb.T, chunk, out.state.data(), out.y.data(), pb.y_stride(),
             scratch.data());
  CHECK(scratch.back() == kSentinel);
  return out;
}

// Largest |got - want| / magnitude over y (skipping guard columns) and the state; fails the
// test where it exceeds kRelTol.
double CompareRelative(const Problem& pb, const Outputs& got, const Outputs& want,
                       const Outputs& mag, const std::string& what) {
  const size_t HP = pb.dims.n_heads * pb.dims.head_dim;
  double worst = 0.0;
  size_t bad = 0;
  const auto check = [&](float g, float w, float m, const char* kind, size_t i) {
    const double err = std::fabs(static_cast<double>(g) - w);
    const double scale = std::max(static_cast<double>(m), 1e-30);
    worst = std::max(worst, err / scale);
    if (!(err <= kRelTol * scale) && bad++ == 0) {
      MESSAGE(what, ": ", kind, "[", i, "] got ", g, " want ", w, " magnitude ", m);
    }
  };
  for (size_t t = 0; t < pb.T; ++t) {
    for (size_t i = 0; i < HP; ++i) {
      const size_t k = t * pb.y_stride() + i;
      check(got.y[k], want.y[k], mag.y[k], "y", k);
    }
  }
  for (size_t i = 0; i < want.state.size(); ++i) {
    check(got.state[i], want.state[i], mag.state[i], "state", i);
  }
  CHECK_MESSAGE(bad == 0, what);
  return worst;
}

std::vector<SsdDims> DimsCases() {
  // {H, P, N, G}: the fixture's shape, groups, P and N around every vector width, and P wide
  // enough for the 4-vector tiles of AVX-512 (64 = 4 x 16 lanes, 67 with a tail), the last with
  // the d_state of real models.
  return {{8, 16, 16, 1}, {4, 5, 7, 2},  {6, 17, 33, 3}, {2, 1, 1, 1},
          {3, 9, 4, 1},   {4, 32, 8, 4}, {2, 67, 9, 1},  {1, 64, 128, 1}};
}

TEST_CASE("SSD known answer: a halving decay and unit B, C") {
  ForEachTarget([](const std::string&) {
    // One head, P = N = 1, dt = 1, A = -ln 2: S_1 = 1, S_2 = 0.5 + 2 = 2.5; y = S + D x.
    const float x[2] = {1.0f, 2.0f}, B[2] = {1.0f, 1.0f}, C[2] = {1.0f, 1.0f};
    const float dt[2] = {1.0f, 1.0f}, A = -std::log(2.0f), D = 0.25f;
    SsdDims dims{1, 1, 1, 1};
    SsdInputs in{x, 1, dt, 1, B, C, 1, &A, &D};
    float state = 0.0f, y[2] = {0.0f, 0.0f};
    std::vector<float> scratch(SsdPrefillScratchFloats(dims, 2, 8));
    SsdPrefill(dims, in, 2, 8, &state, y, 1, scratch.data());
    CHECK(y[0] == doctest::Approx(1.25).epsilon(1e-6));
    CHECK(y[1] == doctest::Approx(3.0).epsilon(1e-6));
    CHECK(state == doctest::Approx(2.5).epsilon(1e-6));
    float state_step = 0.0f, y_step = 0.0f;
    SsdStep(dims, in, &state_step, &y_step, 0, 1);
    SsdInputs second{x + 1, 1, dt + 1, 1, B + 1, C + 1, 1, &A, &D};
    SsdStep(dims, second, &state_step, &y_step, 0, 1);
    CHECK(y_step == doctest::Approx(3.0).epsilon(1e-6));
    CHECK(state_step == doctest::Approx(2.5).epsilon(1e-6));
  });
}

TEST_CASE("SsdStep matches the double recurrence for every head range") {
  ForEachTarget([](const std::string& target) {
    uint32_t seed = 1;
    for (const SsdDims& dims : DimsCases()) {
      for (Regime regime : {Regime::kFast, Regime::kSlow}) {
        CAPTURE(dims.n_heads);
        CAPTURE(dims.head_dim);
        CAPTURE(dims.d_state);
        const Problem pb(dims, 3, regime, seed++);
        const Problem mag = pb.Magnitudes();
        // Three steps, the middle one split into two head ranges.
        Outputs got{std::vector<float>(3 * pb.y_stride(), kSentinel), pb.state0};
        for (size_t t = 0; t < 3; ++t) {
          float* y = got.y.data() + t * pb.y_stride();
          if (t == 1 && dims.n_heads > 1) {
            SsdStep(dims, pb.Inputs(t), got.state.data(), y, 0, 1);
            SsdStep(dims, pb.Inputs(t), got.state.data(), y, 1, dims.n_heads);
          } else {
            SsdStep(dims, pb.Inputs(t), got.state.data(), y, 0, dims.n_heads);
          }
          CHECK(y[dims.n_heads * dims.head_dim] == kSentinel);
        }
        CompareRelative(pb, got, Reference(pb), Reference(mag), target + " step");
        // One step against the one-step reference twin, bit for bit in what it leaves alone.
        std::vector<float> s_ref = pb.state0, y_ref(pb.y_stride(), 0.0f);
        ref::SsdStep(dims, pb.Inputs(), s_ref.data(), y_ref.data(), 0, dims.n_heads);
        std::vector<float> s_got = pb.state0, y_got(pb.y_stride(), 0.0f);
        SsdStep(dims, pb.Inputs(), s_got.data(), y_got.data(), 0, dims.n_heads);
        for (size_t i = 0; i < s_ref.size(); ++i) {
          CHECK(s_got[i] == doctest::Approx(s_ref[i]).epsilon(1e-5).scale(2.0));
        }
      }
    }
  });
}

TEST_CASE("chunked SSD == sequential recurrence for chunks 1, 3, 8, 32, 64 and ragged T") {
  double worst = 0.0;
  ForEachTarget([&](const std::string& target) {
    uint32_t seed = 100;
    for (const SsdDims& dims : DimsCases()) {
      for (Regime regime : {Regime::kFast, Regime::kSlow}) {
        for (size_t T : {1, 7, 100}) {
          const Problem pb(dims, T, regime, seed++);
          const Outputs want = Reference(pb);
          const Outputs mag = Reference(pb.Magnitudes());
          for (size_t chunk : {1, 3, 8, 32, 64}) {
            CAPTURE(T);
            CAPTURE(chunk);
            CAPTURE(dims.n_heads);
            CAPTURE(dims.head_dim);
            CAPTURE(dims.d_state);
            CAPTURE(dims.n_groups);
            const Outputs got = Chunked(pb, chunk);
            for (size_t t = 0; t < T; ++t) {
              CHECK(got.y[t * pb.y_stride() + dims.n_heads * dims.head_dim] == kSentinel);
            }
            worst = std::max(worst, CompareRelative(pb, got, want, mag,
                                                    target + " chunk " + std::to_string(chunk)));
          }
        }
      }
    }
  });
  MESSAGE("chunked vs sequential: worst |error| / magnitude = ", worst);
}

TEST_CASE("chunked SSD: head and item ranges give the same bits as one call") {
  ForEachTarget([](const std::string&) {
    const SsdDims dims{6, 17, 33, 3};
    const size_t T = 45, chunk = 8;
    const Problem pb(dims, T, Regime::kFast, 7);
    const Outputs whole = Chunked(pb, chunk);

    Outputs split{std::vector<float>(T * pb.y_stride(), kSentinel), pb.state0};
    std::vector<float> gram(SsdGramFloats(dims, T, chunk));
    const size_t items = SsdGramItems(dims, T, chunk);
    CHECK(items == 3 * 6);
    SsdChunkGram(dims, pb.Inputs(), T, chunk, 0, 5, gram.data());
    SsdChunkGram(dims, pb.Inputs(), T, chunk, 5, items, gram.data());
    std::vector<float> scratch(SsdScanScratchFloats(dims, T, chunk));
    for (auto [b, e] : {std::pair<size_t, size_t>{0, 1}, {1, 4}, {4, 6}}) {
      SsdChunkScan(dims, pb.Inputs(), T, chunk, gram.data(), split.state.data(), split.y.data(),
                   pb.y_stride(), b, e, scratch.data());
    }
    CHECK(std::memcmp(split.y.data(), whole.y.data(), split.y.size() * 4) == 0);
    CHECK(std::memcmp(split.state.data(), whole.state.data(), split.state.size() * 4) == 0);
  });
}

TEST_CASE("chunked SSD: prefill in pieces and token steps agree with one prefill") {
  ForEachTarget([](const std::string& target) {
    const SsdDims dims{4, 5, 7, 2};
    const size_t T = 50, chunk = 8;
    for (Regime regime : {Regime::kFast, Regime::kSlow}) {
      const Problem pb(dims, T, regime, 11);
      const Outputs want = Reference(pb);
      const Outputs mag = Reference(pb.Magnitudes());
      for (size_t split : {1, 13, 16, 49}) {
        CAPTURE(split);
        // Prefill [0, split), then single steps for the rest.
        Outputs got{std::vector<float>(T * pb.y_stride(), 0.0f), pb.state0};
        std::vector<float> scratch(SsdPrefillScratchFloats(dims, split, chunk));
        SsdPrefill(dims, pb.Inputs(), split, chunk, got.state.data(), got.y.data(), pb.y_stride(),
                   scratch.data());
        for (size_t t = split; t < T; ++t) {
          SsdStep(dims, pb.Inputs(t), got.state.data(), got.y.data() + t * pb.y_stride(), 0,
                  dims.n_heads);
        }
        CompareRelative(pb, got, want, mag, target + " prefill+steps");
        // Two prefills: [0, split) and [split, T).
        Outputs two{std::vector<float>(T * pb.y_stride(), 0.0f), pb.state0};
        SsdPrefill(dims, pb.Inputs(), split, chunk, two.state.data(), two.y.data(), pb.y_stride(),
                   scratch.data());
        std::vector<float> scratch2(SsdPrefillScratchFloats(dims, T - split, chunk));
        SsdPrefill(dims, pb.Inputs(split), T - split, chunk, two.state.data(),
                   two.y.data() + split * pb.y_stride(), pb.y_stride(), scratch2.data());
        CompareRelative(pb, two, want, mag, target + " prefill+prefill");
      }
    }
  });
}

TEST_CASE("chunked SSD: extreme decays stay finite and exact") {
  ForEachTarget([](const std::string& target) {
    const SsdDims dims{2, 8, 8, 1};
    const size_t T = 70;
    Problem pb(dims, T, Regime::kFast, 5);
    // Head 0 forgets everything at once (dt A ~ -1e4: exp underflows to 0); head 1 barely decays.
    pb.A = {-1e4f, -1e-6f};
    const Outputs want = Reference(pb);
    const Outputs mag = Reference(pb.Magnitudes());
    for (size_t chunk : {1, 16, 64}) {
      const Outputs got = Chunked(pb, chunk);
      for (float v : got.state) REQUIRE(std::isfinite(v));
      CompareRelative(pb, got, want, mag, target + " extreme chunk " + std::to_string(chunk));
    }
  });
}

TEST_CASE("SSD scratch sizes grow with T up to the chunk, then with the number of chunks") {
  const SsdDims dims{8, 16, 16, 1};
  CHECK(SsdChunkLength(0, 32) == 1);
  CHECK(SsdChunkLength(10, 32) == 10);
  CHECK(SsdChunkLength(100, 32) == 32);
  CHECK(SsdGramItems(dims, 100, 32) == 4);
  CHECK(SsdGramFloats(dims, 100, 32) == 4 * 32 * 32);
  size_t last = 0;
  for (size_t T = 1; T <= 300; ++T) {
    const size_t s = SsdPrefillScratchFloats(dims, T, 32);
    CHECK(s >= last);
    last = s;
  }
}

}  // namespace
}  // namespace recur::ops
