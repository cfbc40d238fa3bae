// Tests ops/linear_attention.h and ops/rope.h on every compiled target against the scalar double
// twins in ops/reference/linear_attention.h (awkward sizes, strides wider than rows, guard zones
// after every output), RoPE's relative-position identity <R_m q, R_n k> = <q, R_{n-m} k>
// (MATH.md), and the online softmax of ops/softmax.h == softmax(q K^T / sqrt(d) + mask) V in
// double for any split of the keys into blocks, merged in any grouping.
#include "ops/linear_attention.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "ops/reference/linear_attention.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::Buffer;
using testing::ForEachTarget;
using testing::RandomVector;

const std::vector<size_t> kDims = {1, 3, 4, 8, 15, 16, 17, 33, 64};

double MaxRelDiff(const float* a, const float* b, size_t n) {
  double m = 0.0, mag = 1.0;
  for (size_t i = 0; i < n; ++i) mag = std::max(mag, std::fabs(static_cast<double>(b[i])));
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m / mag;
}

TEST_CASE("LinearAttentionStep matches the reference on every target, decays scalar and per row") {
  double worst = 0.0;
  ForEachTarget([&](const std::string&) {
    for (size_t dk : kDims) {
      for (size_t dv : kDims) {
        for (bool per_row : {false, true}) {
          CAPTURE(dk);
          CAPTURE(dv);
          CAPTURE(per_row);
          const uint32_t seed = static_cast<uint32_t>(dk * 131 + dv * 7 + per_row);
          Buffer S(dk * dv, 1), out(dv, 3);
          std::vector<float> S_ref = RandomVector(dk * dv, -1, 1, seed);
          S.CopyFrom(S_ref);
          std::vector<float> out_ref(dv);
          const std::vector<float> decay = RandomVector(dk, 0.5f, 1.0f, seed + 1);
          for (int step = 0; step < 3; ++step) {
            const auto q = RandomVector(dk, -1, 1, seed + 10 + step);
            const auto k = RandomVector(dk, -1, 1, seed + 20 + step);
            const auto v = RandomVector(dv, -1, 1, seed + 30 + step);
            LinearAttentionStep(S.data(), q.data(), k.data(), v.data(),
                                per_row ? decay.data() : nullptr, 0.9f, dk, dv, out.data());
            ref::LinearAttentionStep(S_ref.data(), q.data(), k.data(), v.data(),
                                     per_row ? decay.data() : nullptr, 0.9f, dk, dv,
                                     out_ref.data());
          }
          const double e = std::max(MaxRelDiff(S.data(), S_ref.data(), S.size()),
                                    MaxRelDiff(out.data(), out_ref.data(), dv));
          worst = std::max(worst, e);
          CHECK(e < 1e-5);
          CHECK(S.GuardIntact());
          CHECK(out.GuardIntact());
        }
      }
    }
  });
  MESSAGE("LinearAttentionStep: max relative |diff| vs double reference ", worst);
}

TEST_CASE("MatMulAcc, MatTMulAcc, Scores and GatedScores match the reference on every target") {
  double worst = 0.0;
  ForEachTarget([&](const std::string&) {
    for (size_t M : {1, 3, 4, 5, 9, 33}) {
      for (size_t K : {1, 7, 16, 17}) {
        for (size_t N : {1, 4, 15, 16, 17, 40}) {
          CAPTURE(M);
          CAPTURE(K);
          CAPTURE(N);
          const uint32_t seed = static_cast<uint32_t>(M * 1000 + K * 50 + N);
          const size_t as = K + 2, bs = N + 3, cs = N + 1;
          const auto a = RandomVector(M * as, -1, 1, seed);
          const auto b = RandomVector(K * bs, -1, 1, seed + 1);
          const auto c0 = RandomVector(M * cs, -1, 1, seed + 2);
          Buffer c(M * cs, 1);
          c.CopyFrom(c0);
          std::vector<float> c_ref = c0;
          MatMulAcc(a.data(), as, b.data(), bs, c.data(), cs, M, K, N);
          ref::MatMulAcc(a.data(), as, b.data(), bs, c_ref.data(), cs, M, K, N);
          double e = MaxRelDiff(c.data(), c_ref.data(), c.size());
          CHECK(c.GuardIntact());
          // a^T b with a: [K, M].
          const size_t ats = M + 1;
          const auto at = RandomVector(K * ats, -1, 1, seed + 3);
          c.CopyFrom(c0);
          c_ref = c0;
          MatTMulAcc(at.data(), ats, b.data(), bs, c.data(), cs, K, M, N);
          ref::MatTMulAcc(at.data(), ats, b.data(), bs, c_ref.data(), cs, K, M, N);
          e = std::max(e, MaxRelDiff(c.data(), c_ref.data(), c.size()));
          CHECK(c.GuardIntact());
          // Scores: a [M, K] against rows [N, K].
          const auto rows = RandomVector(N * (K + 1), -1, 1, seed + 4);
          for (bool causal : {false, true}) {
            for (size_t offset : {size_t{0}, size_t{2}}) {
              Buffer s(M * cs, 2);
              std::vector<float> s_ref(M * cs);
              Scores(a.data(), as, rows.data(), K + 1, M, N, K, 0.5f, causal, offset, s.data(), cs);
              ref::Scores(a.data(), as, rows.data(), K + 1, M, N, K, 0.5f, causal, offset,
                          s_ref.data(), cs);
              for (size_t i = 0; i < M; ++i) {
                e = std::max(e, MaxRelDiff(s.data() + i * cs, s_ref.data() + i * cs, N));
              }
            }
          }
          // GatedScores over a C x C chunk (C = M) with non-increasing cumulative log decays.
          const size_t C = M;
          std::vector<float> lg(C * K);
          const auto steps = RandomVector(C * K, -3.0f, 0.0f, seed + 5);
          for (size_t i = 0; i < C; ++i) {
            for (size_t j = 0; j < K; ++j) lg[i * K + j] = (i ? lg[(i - 1) * K + j] : 0) + steps[i * K + j];
          }
          const auto ka = RandomVector(C * K, -1, 1, seed + 6);
          Buffer g(C * C, 1);
          std::vector<float> g_ref(C * C);
          GatedScores(a.data(), as, ka.data(), K, lg.data(), K, C, K, g.data(), C);
          ref::GatedScores(a.data(), as, ka.data(), K, lg.data(), K, C, K, g_ref.data(), C);
          e = std::max(e, MaxRelDiff(g.data(), g_ref.data(), g.size()));
          CHECK(g.GuardIntact());
          worst = std::max(worst, e);
          CHECK(e < 1e-5);
        }
      }
    }
  });
  MESSAGE("chunk products: max relative |diff| vs double reference ", worst);
}

TEST_CASE("ApplyRope matches the reference on every target; <R_m q, R_n k> = <q, R_(n-m) k>") {
  double worst = 0.0;
  ForEachTarget([&](const std::string&) {
    for (size_t hd : {2, 4, 8, 14, 16, 34, 64}) {
      for (bool interleaved : {false, true}) {
        CAPTURE(hd);
        CAPTURE(interleaved);
        const size_t heads = 3;
        std::vector<float> cos(hd / 2), sin(hd / 2);
        RopeAngles(37.0, hd, 10000.0f, cos.data(), sin.data());
        const auto x0 = RandomVector(heads * hd, -1, 1, static_cast<uint32_t>(hd));
        Buffer x(heads * hd, 1);
        x.CopyFrom(x0);
        std::vector<float> x_ref = x0;
        ApplyRope(x.data(), heads, hd, cos.data(), sin.data(), interleaved);
        ref::ApplyRope(x_ref.data(), heads, hd, cos.data(), sin.data(), interleaved);
        const double e = MaxRelDiff(x.data(), x_ref.data(), x.size());
        worst = std::max(worst, e);
        CHECK(e < 1e-6);
        CHECK(x.GuardIntact());
        // Relative position: rotate q by m and k by n; the dot equals q . R_{n - m} k.
        const auto q = RandomVector(hd, -1, 1, 5), k = RandomVector(hd, -1, 1, 6);
        for (auto [m, n] : {std::pair<double, double>{3, 10}, {100, 41}, {5000, 5007}}) {
          std::vector<float> qm = q, kn = k, kd = k;
          RopeAngles(m, hd, 10000.0f, cos.data(), sin.data());
          ApplyRope(qm.data(), 1, hd, cos.data(), sin.data(), interleaved);
          RopeAngles(n, hd, 10000.0f, cos.data(), sin.data());
          ApplyRope(kn.data(), 1, hd, cos.data(), sin.data(), interleaved);
          RopeAngles(n - m, hd, 10000.0f, cos.data(), sin.data());
          ApplyRope(kd.data(), 1, hd, cos.data(), sin.data(), interleaved);
          double lhs = 0, rhs = 0;
          for (size_t i = 0; i < hd; ++i) {
            lhs += static_cast<double>(qm[i]) * kn[i];
            rhs += static_cast<double>(q[i]) * kd[i];
          }
          CHECK(std::fabs(lhs - rhs) < 1e-5 * hd);
        }
      }
    }
  });
  MESSAGE("ApplyRope: max relative |diff| vs double reference ", worst);
}

TEST_CASE("online softmax == softmax(q K^T / sqrt(d) + mask) V in double for any block split") {
  double worst = 0.0;
  ForEachTarget([&](const std::string&) {
    std::mt19937 rng(3);
    for (size_t n : {1, 2, 5, 31, 64, 65, 200}) {
      for (size_t d : {1, 8, 17}) {
        CAPTURE(n);
        CAPTURE(d);
        const auto q = RandomVector(d, -2, 2, static_cast<uint32_t>(n + d));
        const auto keys = RandomVector(n * d, -2, 2, static_cast<uint32_t>(n * 3 + d));
        const auto values = RandomVector(n * d, -1, 1, static_cast<uint32_t>(n * 5 + d));
        // A causal mask for a query at position p sees keys [0, p]; p = n - 1 - (n / 3).
        const size_t visible = n - n / 3;
        std::vector<float> s(n);
        for (size_t j = 0; j < n; ++j) {
          double dot = 0;
          for (size_t i = 0; i < d; ++i) dot += static_cast<double>(q[i]) * keys[j * d + i];
          s[j] = j < visible ? static_cast<float>(dot / std::sqrt(static_cast<double>(d)))
                             : -INFINITY;
        }
        // Direct softmax in double.
        double mx = -INFINITY, z = 0;
        for (size_t j = 0; j < visible; ++j) mx = std::max(mx, static_cast<double>(s[j]));
        for (size_t j = 0; j < visible; ++j) z += std::exp(s[j] - mx);
        std::vector<double> want(d, 0.0);
        for (size_t j = 0; j < visible; ++j) {
          for (size_t i = 0; i < d; ++i) want[i] += std::exp(s[j] - mx) / z * values[j * d + i];
        }
        for (int trial = 0; trial < 4; ++trial) {
          // Random block boundaries; even blocks go to state 1, odd ones to state 2, merged last.
          std::vector<size_t> cuts = {0, n};
          for (int c = 0; c < trial * 2; ++c) cuts.push_back(rng() % (n + 1));
          std::sort(cuts.begin(), cuts.end());
          float m1, z1, m2, z2;
          std::vector<float> y1(d), y2(d), out(d);
          OnlineSoftmaxReset(&m1, &z1, y1.data(), d);
          OnlineSoftmaxReset(&m2, &z2, y2.data(), d);
          for (size_t b = 0; b + 1 < cuts.size(); ++b) {
            const size_t lo = cuts[b], len = cuts[b + 1] - cuts[b];
            if (len == 0) continue;
            if (b % 2 == 0) {
              OnlineSoftmaxUpdateBlock(&m1, &z1, y1.data(), s.data() + lo, values.data() + lo * d,
                                       d, len, d);
            } else {
              OnlineSoftmaxUpdateBlock(&m2, &z2, y2.data(), s.data() + lo, values.data() + lo * d,
                                       d, len, d);
            }
          }
          OnlineSoftmaxMerge(&m1, &z1, y1.data(), m2, z2, y2.data(), d);
          OnlineSoftmaxOutput(z1, y1.data(), out.data(), d);
          double e = 0;
          for (size_t i = 0; i < d; ++i) e = std::max(e, std::fabs(out[i] - want[i]));
          worst = std::max(worst, e);
          CHECK(e < 1e-6);
        }
      }
    }
  });
  MESSAGE("online softmax, any split: max |diff| vs direct softmax in double ", worst);
}

}  // namespace
}  // namespace recur::ops
