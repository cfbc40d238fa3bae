// Tests ops/conv1d.h: a known answer, agreement with the double reference on every target, and the
// exact (bit-identical) agreement of T steps, one chunk, and a chunk split in two.
#include "ops/conv1d.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/reference/conv1d.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::Buffer;
using testing::CountMismatches;
using testing::ForEachTarget;
using testing::kUlp;
using testing::RandomVector;

bool SameBits(const float* a, const float* b, size_t n) {
  return n == 0 || std::memcmp(a, b, n * sizeof(float)) == 0;
}

TEST_CASE(
    "Conv1d known answer: the last tap multiplies the current input, history starts at zero") {
  ForEachTarget([](const std::string&) {
    // One channel, taps (1, 2, 3): y_t = x_{t-2} + 2 x_{t-1} + 3 x_t.
    const float w[3] = {1.0f, 2.0f, 3.0f};
    const float x[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    const float bias = 0.5f;
    float state[2] = {0.0f, 0.0f};
    float y[4];
    Conv1dChunk(state, x, 1, 4, w, &bias, 1, 3, false, y, 1);
    CHECK(y[0] == 3.5f);
    CHECK(y[1] == 8.5f);
    CHECK(y[2] == 14.5f);
    CHECK(y[3] == 20.5f);
    CHECK(state[0] == 3.0f);  // Oldest first.
    CHECK(state[1] == 4.0f);
    float out = 0.0f;
    const float x5 = 5.0f;
    Conv1dStep(state, &x5, w, nullptr, 1, 3, true, &out);
    const double pre = 3.0 + 2.0 * 4.0 + 3.0 * 5.0;
    CHECK(out == doctest::Approx(pre / (1.0 + std::exp(-pre))));
  });
}

struct ConvCase {
  size_t channels, width;
  bool with_bias, silu;
};

std::vector<ConvCase> Cases() {
  std::vector<ConvCase> cases;
  for (size_t channels : {1, 3, 4, 7, 15, 16, 17, 33, 100}) {
    for (size_t width : {1, 2, 3, 4, 5}) {
      cases.push_back({channels, width, (channels + width) % 2 == 0, width % 2 == 0});
    }
  }
  cases.push_back({4099, 4, true, true});  // Mamba-like, large and odd.
  cases.push_back({64, 16, true, false});  // The widest supported kernel.
  return cases;
}

// Tolerance against the double reference, before SiLU's own error: the f32 kernel rounds K
// multiply-adds, each at most half an ulp of the running magnitude <= |bias| + sum |w x|, and
// SiLU's derivative is at most 1.1. (state is the state before the step.)
std::vector<double> ConvTolerance(const float* state, const float* x, const float* w,
                                  const float* bias, size_t C, size_t K) {
  std::vector<double> tol(C);
  for (size_t c = 0; c < C; ++c) {
    double mag = bias != nullptr ? std::fabs(bias[c]) : 0.0;
    for (size_t k = 0; k + 1 < K; ++k) mag += std::fabs(w[c * K + k] * state[k * C + c]);
    mag += std::fabs(w[c * K + K - 1] * x[c]);
    tol[c] = 1.1 * (K + 1) * kUlp * mag + 1e-38;
  }
  return tol;
}

TEST_CASE("Conv1dStep matches the reference, and its state is an exact copy of the inputs") {
  ForEachTarget([](const std::string&) {
    for (const ConvCase& cc : Cases()) {
      for (size_t offset : {0, 1}) {
        const size_t C = cc.channels, K = cc.width;
        CAPTURE(C);
        CAPTURE(K);
        CAPTURE(offset);
        const std::vector<float> w = RandomVector(C * K, -1.0f, 1.0f, 121 + C * K);
        const std::vector<float> bias = RandomVector(C, -0.5f, 0.5f, 122 + C);
        const float* b = cc.with_bias ? bias.data() : nullptr;
        Buffer state(Conv1dStateSize(C, K), offset), out(C, offset), xb(C, offset);
        state.Fill(0.0f);
        std::vector<float> state_ref(Conv1dStateSize(C, K), 0.0f), want(C);
        for (size_t step = 0; step < 6; ++step) {
          const std::vector<float> x = RandomVector(C, -2.0f, 2.0f, 123 + step * 7 + C);
          xb.CopyFrom(x);
          const std::vector<double> tol =
              ConvTolerance(state_ref.data(), x.data(), w.data(), b, C, K);
          ref::Conv1dStep(state_ref.data(), x.data(), w.data(), b, C, K, cc.silu, want.data());
          Conv1dStep(state.data(), xb.data(), w.data(), b, C, K, cc.silu, out.data());
          // Plus SiLU's 8 half-ulps of the result (see activation_test).
          CHECK(CountMismatches(
                    out.data(), want.data(), C,
                    [&](size_t c) { return tol[c] + 8 * kUlp * std::fabs(want[c]); },
                    "Conv1dStep") == 0);
          CHECK(SameBits(state.data(), state_ref.data(), state_ref.size()));
          CHECK(out.GuardIntact());
          CHECK(state.GuardIntact());
        }
        // out == x is allowed.
        Buffer state2(Conv1dStateSize(C, K), offset);
        std::memcpy(state2.data(), state.data(), Conv1dStateSize(C, K) * sizeof(float));
        Conv1dStep(state.data(), xb.data(), w.data(), b, C, K, cc.silu, out.data());
        Conv1dStep(state2.data(), xb.data(), w.data(), b, C, K, cc.silu, xb.data());
        CHECK(SameBits(xb.data(), out.data(), C));
        CHECK(SameBits(state2.data(), state.data(), Conv1dStateSize(C, K)));
      }
    }
  });
}

TEST_CASE("Conv1dChunk equals T steps bit for bit, and a split chunk equals the whole chunk") {
  ForEachTarget([](const std::string&) {
    for (const ConvCase& cc : Cases()) {
      const size_t C = cc.channels, K = cc.width;
      for (size_t T : {1, 2, 3, 5, 16}) {
        CAPTURE(C);
        CAPTURE(K);
        CAPTURE(T);
        // Strided rows: x and y are column slices of wider matrices.
        const size_t x_stride = C + 3, y_stride = C + 5;
        const std::vector<float> w = RandomVector(C * K, -1.0f, 1.0f, 131 + C * K);
        const std::vector<float> bias = RandomVector(C, -0.5f, 0.5f, 132 + C);
        const float* b = cc.with_bias ? bias.data() : nullptr;
        const std::vector<float> x = RandomVector(T * x_stride, -2.0f, 2.0f, 133 + T + C);
        // A non-trivial starting state, as after some earlier tokens.
        const std::vector<float> state0 = RandomVector(Conv1dStateSize(C, K), -2.0f, 2.0f, 134 + C);

        // T single steps.
        std::vector<float> state_steps = state0;
        std::vector<float> y_steps(T * y_stride, -9.0f);
        for (size_t t = 0; t < T; ++t) {
          Conv1dStep(state_steps.data(), x.data() + t * x_stride, w.data(), b, C, K, cc.silu,
                     y_steps.data() + t * y_stride);
        }
        // One chunk.
        std::vector<float> state_chunk = state0;
        std::vector<float> y_chunk(T * y_stride, -9.0f);
        Conv1dChunk(state_chunk.data(), x.data(), x_stride, T, w.data(), b, C, K, cc.silu,
                    y_chunk.data(), y_stride);
        CHECK(SameBits(y_chunk.data(), y_steps.data(), y_steps.size()));  // Gaps untouched too.
        CHECK(SameBits(state_chunk.data(), state_steps.data(), state_steps.size()));

        // The chunk split at every point.
        for (size_t split = 0; split <= T; ++split) {
          CAPTURE(split);
          std::vector<float> state_split = state0;
          std::vector<float> y_split(T * y_stride, -9.0f);
          Conv1dChunk(state_split.data(), x.data(), x_stride, split, w.data(), b, C, K, cc.silu,
                      y_split.data(), y_stride);
          Conv1dChunk(state_split.data(), x.data() + split * x_stride, x_stride, T - split,
                      w.data(), b, C, K, cc.silu, y_split.data() + split * y_stride, y_stride);
          CHECK(SameBits(y_split.data(), y_chunk.data(), y_chunk.size()));
          CHECK(SameBits(state_split.data(), state_chunk.data(), state_chunk.size()));
        }

        // And the chunk agrees with the reference.
        std::vector<float> state_ref = state0;
        std::vector<float> y_ref(T * y_stride, -9.0f);
        ref::Conv1dChunk(state_ref.data(), x.data(), x_stride, T, w.data(), b, C, K, cc.silu,
                         y_ref.data(), y_stride);
        CHECK(SameBits(state_ref.data(), state_chunk.data(), state_ref.size()));
        CHECK(CountMismatches(
                  y_chunk.data(), y_ref.data(), y_ref.size(),
                  [&](size_t i) {
                    // Magnitudes are <= |b| + K * 2 (|w| <= 1, |x| <= 2).
                    return 1.1 * (K + 1) * kUlp * (0.5 + 2.0 * K) + 8 * kUlp * std::fabs(y_ref[i]);
                  },
                  "Conv1dChunk") == 0);
      }
    }
  });
}

TEST_CASE("Conv1d reads nothing past its inputs (guard page)") {
  ForEachTarget([](const std::string&) {
    for (size_t C : {1, 3, 17}) {
      const size_t K = 4, T = 3;
      CAPTURE(C);
      testing::PageGuardedArray<float> w(C * K), bias(C), state(Conv1dStateSize(C, K)), x(T * C),
          y(T * C);
      for (size_t i = 0; i < C * K; ++i) w[i] = 0.25f;
      for (size_t i = 0; i < C; ++i) bias[i] = 1.0f;
      for (size_t i = 0; i < Conv1dStateSize(C, K); ++i) state[i] = 0.0f;
      for (size_t i = 0; i < T * C; ++i) x[i] = 2.0f;
      Conv1dChunk(state.data(), x.data(), C, T, w.data(), bias.data(), C, K, false, y.data(), C);
      CHECK(y[T * C - 1] == 1.0f + 3 * 0.5f);
      Conv1dStep(state.data(), x.data() + (T - 1) * C, w.data(), bias.data(), C, K, false,
                 y.data() + (T - 1) * C);
      CHECK(y[T * C - 1] == 1.0f + 4 * 0.5f);
    }
  });
}

}  // namespace
}  // namespace recur::ops
