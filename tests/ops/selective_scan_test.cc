// Tests ops/selective_scan.h: a known answer, agreement with the double reference on every target
// at awkward state sizes and channel ranges, the exact (bit-identical) agreement of T steps, one
// chunk, a split chunk and split channel ranges, and, for the reference itself, the identity
// sequential scan == associative scan with (a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2) (MATH.md).
#include "ops/selective_scan.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "ops/reference/selective_scan.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::Buffer;
using testing::CountMismatches;
using testing::ForEachTarget;
using testing::kUlp;
using testing::RandomVector;

bool SameBits(const float* a, const float* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

// State sizes around every x86 vector width (1 and 15/16/17 hit the tails of 4, 8 and 16 lanes),
// Mamba's 16, and a large one that takes several vectors per row.
const std::vector<size_t> kStateSizes = {1, 3, 4, 8, 15, 16, 17, 33, 64};

// An SSM the way a trained Mamba-1 looks: A = -exp(A_log) with the S4D-real init A[c, n] = -(n + 1)
// perturbed per channel, dt = softplus(...) in (0, ~1.5), D near 1.
struct ScanParams {
  size_t d_inner, d_state;
  std::vector<float> A, D;

  ScanParams(size_t d_inner_, size_t d_state_, uint32_t seed)
      : d_inner(d_inner_), d_state(d_state_), A(d_inner_ * d_state_) {
    const std::vector<float> jitter = RandomVector(A.size(), -0.3f, 0.3f, seed);
    for (size_t c = 0; c < d_inner; ++c) {
      for (size_t n = 0; n < d_state; ++n) {
        const float a_log = std::log(static_cast<float>(n + 1)) + jitter[c * d_state + n];
        A[c * d_state + n] = -std::exp(a_log);
      }
    }
    D = RandomVector(d_inner, 0.5f, 1.5f, seed + 1);
  }
};

// Positive step sizes: mostly small (as in trained models), some large enough that exp(dt A)
// underflows towards zero for the fast states.
std::vector<float> RandomDt(size_t n, uint32_t seed) {
  std::vector<float> dt = RandomVector(n, 0.001f, 0.3f, seed);
  for (size_t i = 0; i < n; i += 7) dt[i] = 1.5f + 0.1f * static_cast<float>(i % 3);
  return dt;
}

// Tolerance of one step against the double reference, per channel, from the state before the
// step. Per state element the kernel rounds dt * A (relative error 2^-24, which exp turns into an
// absolute error |dt A| 2^-24 of the relative value), the exponential (a few ulp), dt * x, the
// product with B and the multiply-add; the dot product then adds one rounding per vector step and
// the reduction's log2(lanes) levels, all bounded by a multiple of the sum of magnitudes.
struct StepTolerance {
  std::vector<double> h;  // [d_inner * d_state]
  std::vector<double> y;  // [d_inner]
};

StepTolerance StepTol(const ScanParams& p, const float* state, const float* x, const float* dt,
                      const float* B, const float* C) {
  StepTolerance tol;
  tol.h.assign(p.d_inner * p.d_state, 0.0);
  tol.y.assign(p.d_inner, 0.0);
  for (size_t c = 0; c < p.d_inner; ++c) {
    double y_mag = std::fabs(static_cast<double>(p.D[c]) * x[c]);
    double y_err = 0.0;
    for (size_t n = 0; n < p.d_state; ++n) {
      const size_t i = c * p.d_state + n;
      const double dta = std::fabs(static_cast<double>(dt[c]) * p.A[i]);
      const double decayed = std::exp(-dta) * std::fabs(state[i]);
      const double input = std::fabs(static_cast<double>(dt[c]) * x[c] * B[n]);
      tol.h[i] = kUlp * ((8.0 + 2.0 * dta) * decayed + 4.0 * input) + 1e-38;
      const double h_mag = decayed + input;
      y_mag += h_mag * std::fabs(C[n]);
      y_err += tol.h[i] * std::fabs(C[n]);
    }
    tol.y[c] = y_err + (p.d_state + 8.0) * 2.0 * kUlp * y_mag + 1e-38;
  }
  return tol;
}

TEST_CASE("SelectiveScan known answer: exp(dt A) decay plus dt B x input, C . h plus D x") {
  ForEachTarget([](const std::string&) {
    // One channel, two states: A = (-1, -2), dt = ln 2, so the decays are 1/2 and 1/4.
    const float dt = std::log(2.0f);
    const float A[2] = {-1.0f, -2.0f};
    const float B[2] = {3.0f, -1.0f};
    const float C[2] = {1.0f, 2.0f};
    const float D = 0.5f;
    float state[2] = {4.0f, 8.0f};
    const float x = 2.0f;
    float y = 0.0f;
    SelectiveScanStep(state, &x, &dt, A, B, C, &D, 2, 0, 1, &y);
    const double h0 = 0.5 * 4.0 + std::log(2.0) * 2.0 * 3.0;
    const double h1 = 0.25 * 8.0 - std::log(2.0) * 2.0;
    CHECK(state[0] == doctest::Approx(h0).epsilon(1e-6));
    CHECK(state[1] == doctest::Approx(h1).epsilon(1e-6));
    CHECK(y == doctest::Approx(h0 + 2.0 * h1 + 1.0).epsilon(1e-6));

    // A negative dt (no Mamba produces one) would make exp(dt A) grow without bound, and past
    // 104 leave hn::Exp's range; the decay is clamped at 1 instead.
    const float negative_dt = -200.0f;
    float held[2] = {1.0f, 1.0f};
    SelectiveScanStep(held, &x, &negative_dt, A, B, C, nullptr, 2, 0, 1, &y);
    CHECK(held[0] == 1.0f - 200.0f * 2.0f * 3.0f);
    CHECK(held[1] == 1.0f + 200.0f * 2.0f);
  });
}

TEST_CASE("SelectiveScanStep matches the reference and touches only its channel range") {
  ForEachTarget([](const std::string&) {
    for (size_t d_state : kStateSizes) {
      const size_t d_inner = 37;
      const ScanParams p(d_inner, d_state, 300 + d_state);
      const std::vector<std::pair<size_t, size_t>> ranges = {
          {0, d_inner}, {0, 1}, {5, 21}, {d_inner - 1, d_inner}, {16, 32}};
      for (const auto& [c_begin, c_end] : ranges) {
        for (bool with_d : {true, false}) {
          CAPTURE(d_state);
          CAPTURE(c_begin);
          CAPTURE(c_end);
          CAPTURE(with_d);
          const float* D = with_d ? p.D.data() : nullptr;
          // Odd offsets make every row of the state and of A start off a vector boundary.
          Buffer state(d_inner * d_state, 1), y(d_inner, 3);
          state.CopyFrom(RandomVector(d_inner * d_state, -1.0f, 1.0f, 310 + d_state));
          y.Fill(-7.0f);
          for (size_t step = 0; step < 5; ++step) {
            const uint32_t seed = 320 + static_cast<uint32_t>(step * 13 + d_state);
            const std::vector<float> x = RandomVector(d_inner, -2.0f, 2.0f, seed);
            const std::vector<float> dt = RandomDt(d_inner, seed + 1);
            const std::vector<float> B = RandomVector(d_state, -1.0f, 1.0f, seed + 2);
            const std::vector<float> C = RandomVector(d_state, -1.0f, 1.0f, seed + 3);
            // The reference starts from the kernel's own state, so each step is checked alone.
            std::vector<float> state_ref = state.ToVector();
            std::vector<float> y_ref = y.ToVector();
            const StepTolerance tol =
                StepTol(p, state_ref.data(), x.data(), dt.data(), B.data(), C.data());
            ref::SelectiveScanStep(state_ref.data(), x.data(), dt.data(), p.A.data(), B.data(),
                                   C.data(), D, d_state, c_begin, c_end, y_ref.data());
            const std::vector<float> before = state.ToVector();
            SelectiveScanStep(state.data(), x.data(), dt.data(), p.A.data(), B.data(), C.data(), D,
                              d_state, c_begin, c_end, y.data());
            CHECK(CountMismatches(
                      state.data(), state_ref.data(), state_ref.size(),
                      [&](size_t i) { return tol.h[i]; }, "state") == 0);
            CHECK(CountMismatches(
                      y.data(), y_ref.data(), d_inner, [&](size_t c) { return tol.y[c]; }, "y") ==
                  0);
            // Outside the range nothing moved.
            CHECK(SameBits(state.data(), before.data(), c_begin * d_state));
            CHECK(SameBits(state.data() + c_end * d_state, before.data() + c_end * d_state,
                           (d_inner - c_end) * d_state));
            for (size_t c = 0; c < d_inner; ++c) {
              if (c < c_begin || c >= c_end) CHECK(y[c] == -7.0f);
            }
            CHECK(state.GuardIntact());
            CHECK(y.GuardIntact());
          }
        }
      }
    }
  });
}

TEST_CASE("SelectiveScanStep: y may be the very same array as x or dt") {
  ForEachTarget([](const std::string&) {
    for (size_t d_state : {1, 16, 17}) {
      const size_t d_inner = 21;
      const ScanParams p(d_inner, d_state, 400 + d_state);
      const std::vector<float> state0 = RandomVector(d_inner * d_state, -1.0f, 1.0f, 401);
      const std::vector<float> x = RandomVector(d_inner, -2.0f, 2.0f, 402);
      const std::vector<float> dt = RandomDt(d_inner, 403);
      const std::vector<float> B = RandomVector(d_state, -1.0f, 1.0f, 404);
      const std::vector<float> C = RandomVector(d_state, -1.0f, 1.0f, 405);
      std::vector<float> state = state0, y(d_inner);
      SelectiveScanStep(state.data(), x.data(), dt.data(), p.A.data(), B.data(), C.data(),
                        p.D.data(), d_state, 0, d_inner, y.data());
      std::vector<float> state_x = state0, yx = x;
      SelectiveScanStep(state_x.data(), yx.data(), dt.data(), p.A.data(), B.data(), C.data(),
                        p.D.data(), d_state, 0, d_inner, yx.data());
      CHECK(SameBits(yx.data(), y.data(), d_inner));
      CHECK(SameBits(state_x.data(), state.data(), state.size()));
      std::vector<float> state_dt = state0, ydt = dt;
      SelectiveScanStep(state_dt.data(), x.data(), ydt.data(), p.A.data(), B.data(), C.data(),
                        p.D.data(), d_state, 0, d_inner, ydt.data());
      CHECK(SameBits(ydt.data(), y.data(), d_inner));
      CHECK(SameBits(state_dt.data(), state.data(), state.size()));
    }
  });
}

// Inputs of a chunk as column slices of wider matrices, the way the Mamba-1 block lays them out:
// x and dt [T, stride > d_inner], B and C inside one [T, dt_rank + 2 d_state] x_proj row.
struct ChunkInputs {
  size_t T, x_stride, dt_stride, bc_stride, y_stride;
  std::vector<float> x, dt, xdbl;
  const float* B() const { return xdbl.data() + 3; }
  const float* C(size_t d_state) const { return xdbl.data() + 3 + d_state; }

  ChunkInputs(size_t T_, size_t d_inner, size_t d_state, uint32_t seed)
      : T(T_),
        x_stride(d_inner + 5),
        dt_stride(d_inner + 2),
        bc_stride(3 + 2 * d_state),
        y_stride(d_inner + 7),
        x(RandomVector(T_ * x_stride, -2.0f, 2.0f, seed)),
        dt(RandomDt(T_ * dt_stride, seed + 1)),
        xdbl(RandomVector(T_ * bc_stride, -1.0f, 1.0f, seed + 2)) {}
};

TEST_CASE("SelectiveScanChunk equals T steps bit for bit; split chunks and ranges change nothing") {
  ForEachTarget([](const std::string&) {
    for (size_t d_state : kStateSizes) {
      for (size_t T : {1, 2, 5, 40}) {
        const size_t d_inner = 37;  // Two channel blocks and a partial third.
        CAPTURE(d_state);
        CAPTURE(T);
        const ScanParams p(d_inner, d_state, 500 + d_state);
        const ChunkInputs in(T, d_inner, d_state, 510 + static_cast<uint32_t>(T + d_state));
        const std::vector<float> state0 = RandomVector(d_inner * d_state, -1.0f, 1.0f, 520);

        // T single steps over the whole channel range.
        std::vector<float> state_steps = state0;
        std::vector<float> y_steps(T * in.y_stride, -9.0f);
        for (size_t t = 0; t < T; ++t) {
          SelectiveScanStep(state_steps.data(), in.x.data() + t * in.x_stride,
                            in.dt.data() + t * in.dt_stride, p.A.data(), in.B() + t * in.bc_stride,
                            in.C(d_state) + t * in.bc_stride, p.D.data(), d_state, 0, d_inner,
                            y_steps.data() + t * in.y_stride);
        }
        // One chunk.
        std::vector<float> state_chunk = state0;
        std::vector<float> y_chunk(T * in.y_stride, -9.0f);
        SelectiveScanChunk(state_chunk.data(), in.x.data(), in.x_stride, in.dt.data(), in.dt_stride,
                           T, p.A.data(), in.B(), in.C(d_state), in.bc_stride, p.D.data(), d_state,
                           0, d_inner, y_chunk.data(), in.y_stride);
        CHECK(SameBits(state_chunk.data(), state_steps.data(), state0.size()));
        CHECK(SameBits(y_chunk.data(), y_steps.data(), y_chunk.size()));

        // The chunk split in time at `split`, and in channels at 11 and 29 (ranges that straddle
        // the kernel's channel blocks), in either order.
        const size_t split = T / 3;
        std::vector<float> state_split = state0;
        std::vector<float> y_split(T * in.y_stride, -9.0f);
        for (const auto& [c_begin, c_end] :
             std::vector<std::pair<size_t, size_t>>{{29, d_inner}, {0, 11}, {11, 29}}) {
          for (const auto& [t0, t1] :
               std::vector<std::pair<size_t, size_t>>{{0, split}, {split, T}}) {
            SelectiveScanChunk(state_split.data(), in.x.data() + t0 * in.x_stride, in.x_stride,
                               in.dt.data() + t0 * in.dt_stride, in.dt_stride, t1 - t0, p.A.data(),
                               in.B() + t0 * in.bc_stride, in.C(d_state) + t0 * in.bc_stride,
                               in.bc_stride, p.D.data(), d_state, c_begin, c_end,
                               y_split.data() + t0 * in.y_stride, in.y_stride);
          }
        }
        CHECK(SameBits(state_split.data(), state_steps.data(), state0.size()));
        CHECK(SameBits(y_split.data(), y_steps.data(), y_split.size()));

        // y written over x (same stride), as the block does.
        std::vector<float> state_alias = state0;
        std::vector<float> xy = in.x;
        SelectiveScanChunk(state_alias.data(), xy.data(), in.x_stride, in.dt.data(), in.dt_stride,
                           T, p.A.data(), in.B(), in.C(d_state), in.bc_stride, p.D.data(), d_state,
                           0, d_inner, xy.data(), in.x_stride);
        CHECK(SameBits(state_alias.data(), state_steps.data(), state0.size()));
        bool same = true;
        for (size_t t = 0; t < T; ++t) {
          same &= SameBits(xy.data() + t * in.x_stride, y_steps.data() + t * in.y_stride, d_inner);
        }
        CHECK(same);
      }
    }
  });
}

TEST_CASE("SelectiveScanChunk stays close to the reference over a long chunk") {
  ForEachTarget([](const std::string&) {
    for (size_t d_state : kStateSizes) {
      const size_t d_inner = 19, T = 200;
      CAPTURE(d_state);
      const ScanParams p(d_inner, d_state, 600 + d_state);
      const ChunkInputs in(T, d_inner, d_state, 610 + static_cast<uint32_t>(d_state));
      std::vector<float> state(d_inner * d_state, 0.0f), state_ref = state;
      std::vector<float> y(T * in.y_stride, 0.0f), y_ref = y;
      SelectiveScanChunk(state.data(), in.x.data(), in.x_stride, in.dt.data(), in.dt_stride, T,
                         p.A.data(), in.B(), in.C(d_state), in.bc_stride, p.D.data(), d_state, 2,
                         d_inner, y.data(), in.y_stride);
      ref::SelectiveScanChunk(state_ref.data(), in.x.data(), in.x_stride, in.dt.data(),
                              in.dt_stride, T, p.A.data(), in.B(), in.C(d_state), in.bc_stride,
                              p.D.data(), d_state, 2, d_inner, y_ref.data(), in.y_stride);
      // Every decay is below 1, so rounding errors do not grow: an error made at one step is
      // only carried (and damped) by the later steps. The bound is the per-step error (about 16
      // half-ulps of the magnitudes, see StepTol) times the number of steps an error can survive,
      // at most T = 200 here (the slowest state, A = -exp(-0.3) at dt = 0.001, would keep it for
      // ~1350): 200 * 16 * 2^-24 ~ 2e-4 of the largest magnitude. Measured: ~1e-7.
      double scale = 0.0;
      for (float v : y_ref) scale = std::max(scale, std::fabs(static_cast<double>(v)));
      for (float v : state_ref) scale = std::max(scale, std::fabs(static_cast<double>(v)));
      const double tol = 2e-4 * scale;
      double worst = 0.0;
      for (size_t i = 0; i < y.size(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(y[i]) - y_ref[i]));
      for (size_t i = 0; i < state.size(); ++i) {
        worst = std::max(worst, std::fabs(static_cast<double>(state[i]) - state_ref[i]));
      }
      CHECK(worst <= tol);
      if (d_state == 16)
        MESSAGE("chunk vs reference, d_state 16: max |diff| ", worst, " of ", scale);
    }
  });
}

// (a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2): applying x -> a1 x + b1, then x -> a2 x + b2.
struct Affine {
  double a = 1.0, b = 0.0;
};
Affine Compose(const Affine& first, const Affine& second) {
  return {first.a * second.a, second.a * first.b + second.b};
}

// Inclusive prefix compositions by recursive doubling (Hillis-Steele): log2(T) rounds, each
// combining element t with element t - 2^k. This regroups the products and sums completely
// differently from the sequential scan, which is the point of the identity.
std::vector<Affine> AssociativeScan(std::vector<Affine> e) {
  for (size_t offset = 1; offset < e.size(); offset *= 2) {
    std::vector<Affine> next = e;
    for (size_t t = offset; t < e.size(); ++t) next[t] = Compose(e[t - offset], e[t]);
    e = std::move(next);
  }
  return e;
}

TEST_CASE("reference: sequential scan == associative scan (MATH.md's Mamba-1 identity)") {
  for (size_t d_state : {1, 16, 17}) {
    for (size_t T : {1, 2, 7, 64, 100}) {
      CAPTURE(d_state);
      CAPTURE(T);
      const size_t d_inner = 9;
      const ScanParams p(d_inner, d_state, 700 + d_state);
      const ChunkInputs in(T, d_inner, d_state, 710 + static_cast<uint32_t>(T));
      const std::vector<float> state0 = RandomVector(d_inner * d_state, -1.0f, 1.0f, 720);
      std::vector<float> state = state0;
      std::vector<float> y(T * in.y_stride, 0.0f);
      ref::SelectiveScanChunk(state.data(), in.x.data(), in.x_stride, in.dt.data(), in.dt_stride, T,
                              p.A.data(), in.B(), in.C(d_state), in.bc_stride, p.D.data(), d_state,
                              0, d_inner, y.data(), in.y_stride);
      // The same recurrence as affine maps h -> a_t h + b_t, scanned associatively in double; the
      // reference rounds its state to f32 once per step, so the two differ by at most about T
      // roundings of the state's magnitude (and much less, since decays damp old errors).
      std::vector<double> y_assoc(T * d_inner, 0.0);
      double worst_h = 0.0, worst_y = 0.0, scale = 1e-30;
      for (size_t c = 0; c < d_inner; ++c) {
        for (size_t t = 0; t < T; ++t) {
          y_assoc[t * d_inner + c] = static_cast<double>(p.D[c]) * in.x[t * in.x_stride + c];
        }
        for (size_t n = 0; n < d_state; ++n) {
          std::vector<Affine> e(T);
          for (size_t t = 0; t < T; ++t) {
            const double dt = in.dt[t * in.dt_stride + c];
            const double x = in.x[t * in.x_stride + c];
            e[t] = {std::exp(dt * p.A[c * d_state + n]), dt * in.B()[t * in.bc_stride + n] * x};
          }
          const std::vector<Affine> prefix = AssociativeScan(e);
          for (size_t t = 0; t < T; ++t) {
            const double h = prefix[t].a * state0[c * d_state + n] + prefix[t].b;
            y_assoc[t * d_inner + c] += h * in.C(d_state)[t * in.bc_stride + n];
            scale = std::max(scale, std::fabs(h));
          }
          const double h_final = prefix[T - 1].a * state0[c * d_state + n] + prefix[T - 1].b;
          worst_h = std::max(worst_h, std::fabs(h_final - state[c * d_state + n]));
        }
        for (size_t t = 0; t < T; ++t) {
          worst_y = std::max(worst_y, std::fabs(y_assoc[t * d_inner + c] - y[t * in.y_stride + c]));
        }
      }
      CHECK(worst_h <= 4.0 * T * kUlp * scale);
      CHECK(worst_y <= 4.0 * T * (d_state + 1) * kUlp * scale);
    }
  }
}

}  // namespace
}  // namespace recur::ops
