// Tests ops/wkv.h: known answers worked by hand, agreement with the double reference on every
// target at head sizes around each vector width (several tokens, each from the same state), head
// ranges that split the work leave exactly what one call leaves, and nothing outside the state or
// the output is written.
#include "ops/wkv.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ops/reference/wkv.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::Buffer;
using testing::ForEachTarget;
using testing::RandomVector;

const std::vector<size_t> kHeadSizes = {1, 3, 4, 7, 8, 15, 16, 17, 33, 64};

TEST_CASE("wkv: RWKV-5 known answer, one head of size 2") {
  ForEachTarget([](const std::string&) {
    // S = [[1, 2], [3, 4]] (key i, value j); r = (1, 2), k = (1, -1), v = (2, 3), w = (0.5, 0.25),
    // u = (2, 1).
    float state[4] = {1, 2, 3, 4};
    const float r[2] = {1, 2}, k[2] = {1, -1}, v[2] = {2, 3}, w[2] = {0.5f, 0.25f},
                u[2] = {2, 1};
    float y[2];
    Wkv5Step(state, r, k, v, w, u, 2, 0, 1, y);
    // y[j] = sum_i r_i (u_i k_i v_j + S_ij): y0 = 1 (4 + 1) + 2 (-2 + 3) = 7,
    // y1 = 1 (6 + 2) + 2 (-3 + 4) = 10. S_ij = w_i S_ij + k_i v_j.
    CHECK(y[0] == 7.0f);
    CHECK(y[1] == 10.0f);
    CHECK(state[0] == 2.5f);
    CHECK(state[1] == 4.0f);
    CHECK(state[2] == -1.25f);
    CHECK(state[3] == -2.0f);
  });
}

TEST_CASE("wkv: RWKV-7 known answer, one head of size 2") {
  ForEachTarget([](const std::string&) {
    // S = [[1, 2], [3, 4]] (value i, key j); a = (1, 0), b = (0.5, 1), w = (0.5, 1), v = (1, 2),
    // k = (1, 1), r = (1, -1).
    float state[4] = {1, 2, 3, 4};
    const float r[2] = {1, -1}, w[2] = {0.5f, 1}, k[2] = {1, 1}, v[2] = {1, 2}, a[2] = {1, 0},
                b[2] = {0.5f, 1};
    float y[2];
    Wkv7Step(state, r, w, k, v, a, b, 2, 0, 1, y);
    // sa = (1, 3). Row 0: (0.5 + 0.5 + 1, 2 + 1 + 1) = (2, 4); row 1: (1.5 + 1.5 + 2, 4 + 3 + 2)
    // = (5, 9). y = S r = (-2, -4).
    CHECK(state[0] == 2.0f);
    CHECK(state[1] == 4.0f);
    CHECK(state[2] == 5.0f);
    CHECK(state[3] == 9.0f);
    CHECK(y[0] == -2.0f);
    CHECK(y[1] == -4.0f);
  });
}

// |x - ref| <= tol * (1 + |ref|) elementwise: the kernels' f32 sums of at most 2 N terms of size
// ~1 against the double reference.
void CheckClose(const float* x, const float* ref, size_t n, double tol) {
  for (size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    REQUIRE(std::fabs(double{x[i]} - ref[i]) <= tol * (1.0 + std::fabs(double{ref[i]})));
  }
}

TEST_CASE("wkv: SIMD kernels match the double reference on every target") {
  constexpr size_t kHeads = 3, kTokens = 4;
  for (size_t n : kHeadSizes) {
    CAPTURE(n);
    const size_t C = kHeads * n, S = kHeads * n * n;
    const double tol = 4e-7 * static_cast<double>(n + 4);
    ForEachTarget([&](const std::string&) {
      for (int version : {5, 7}) {
        CAPTURE(version);
        Buffer state(S), y(C);
        state.CopyFrom(RandomVector(S, -1.0f, 1.0f, 7));
        for (size_t t = 0; t < kTokens; ++t) {
          const uint32_t seed = static_cast<uint32_t>(100 * t + n);
          const std::vector<float> r = RandomVector(C, -1, 1, seed);
          const std::vector<float> k = RandomVector(C, -1, 1, seed + 1);
          const std::vector<float> v = RandomVector(C, -1, 1, seed + 2);
          const std::vector<float> w = RandomVector(C, 0.05f, 1.0f, seed + 3);
          std::vector<float> u = RandomVector(C, -1, 1, seed + 4);
          std::vector<float> ref_state = state.ToVector();
          std::vector<float> ref_y(C);
          if (version == 5) {
            Wkv5Step(state.data(), r.data(), k.data(), v.data(), w.data(), u.data(), n, 0,
                     kHeads, y.data());
            ref::Wkv5Step(ref_state.data(), r.data(), k.data(), v.data(), w.data(), u.data(), n,
                          0, kHeads, ref_y.data());
          } else {
            // a = -kk, b = kk * a with kk a unit vector per head, as RWKV-7 makes them.
            std::vector<float> a(C), b(C);
            for (size_t h = 0; h < kHeads; ++h) {
              double ss = 0;
              for (size_t j = 0; j < n; ++j) ss += double{k[h * n + j]} * k[h * n + j];
              for (size_t j = 0; j < n; ++j) {
                const float kk = static_cast<float>(k[h * n + j] / std::sqrt(ss));
                a[h * n + j] = -kk;
                b[h * n + j] = kk * (0.5f + 0.5f * std::fabs(u[h * n + j]));
              }
            }
            Wkv7Step(state.data(), r.data(), w.data(), k.data(), v.data(), a.data(), b.data(), n,
                     0, kHeads, y.data());
            ref::Wkv7Step(ref_state.data(), r.data(), w.data(), k.data(), v.data(), a.data(),
                          b.data(), n, 0, kHeads, ref_y.data());
          }
          CheckClose(y.data(), ref_y.data(), C, tol);
          CheckClose(state.data(), ref_state.data(), S, tol);
          CHECK(state.GuardIntact());
          CHECK(y.GuardIntact());
          // The next token starts from the reference's state, so errors do not compound.
          state.CopyFrom(ref_state);
        }
      }
    });
  }
}

TEST_CASE("wkv: head ranges split the work exactly") {
  constexpr size_t kHeads = 4;
  for (size_t n : {size_t{5}, size_t{16}, size_t{64}}) {
    CAPTURE(n);
    const size_t C = kHeads * n, S = kHeads * n * n;
    const std::vector<float> s0 = RandomVector(S, -1, 1, 1);
    const std::vector<float> r = RandomVector(C, -1, 1, 2), k = RandomVector(C, -1, 1, 3),
                             v = RandomVector(C, -1, 1, 4), w = RandomVector(C, 0.1f, 1, 5),
                             u = RandomVector(C, -1, 1, 6);
    ForEachTarget([&](const std::string&) {
      for (int version : {5, 7}) {
        std::vector<float> whole = s0, split = s0, y1(C), y2(C);
        const auto run = [&](float* s, size_t b, size_t e, float* y) {
          if (version == 5) {
            Wkv5Step(s, r.data(), k.data(), v.data(), w.data(), u.data(), n, b, e, y);
          } else {
            Wkv7Step(s, r.data(), w.data(), k.data(), v.data(), u.data(), r.data(), n, b, e, y);
          }
        };
        run(whole.data(), 0, kHeads, y1.data());
        run(split.data(), 0, 1, y2.data());
        run(split.data(), 1, 3, y2.data());
        run(split.data(), 3, kHeads, y2.data());
        CHECK(std::memcmp(whole.data(), split.data(), S * sizeof(float)) == 0);
        CHECK(std::memcmp(y1.data(), y2.data(), C * sizeof(float)) == 0);
        // An empty range touches nothing.
        std::vector<float> before = whole;
        run(whole.data(), 2, 2, y1.data());
        CHECK(whole == before);
      }
    });
  }
}

}  // namespace
}  // namespace recur::ops
