// Tests ops/softmax.h: Softmax / LogSoftmax against the double reference on every SIMD target,
// and the online softmax: any order of updates, blocks and merges equals softmax(scores) . V.
#include "ops/softmax.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/reference/softmax.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::Buffer;
using testing::CountMismatches;
using testing::ForEachTarget;
using testing::kSizes;
using testing::kUlp;
using testing::RandomVector;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

TEST_CASE("Softmax and LogSoftmax match the double reference at every size and alignment") {
  ForEachTarget([](const std::string&) {
    for (size_t offset : {0, 1}) {
      for (size_t n : kSizes) {
        CAPTURE(n);
        CAPTURE(offset);
        const std::vector<float> x = RandomVector(n, -12.0f, 12.0f, 91 + n);
        const float max = n > 0 ? *std::max_element(x.begin(), x.end()) : 0.0f;
        Buffer buf(n, offset);

        buf.CopyFrom(x);
        Softmax(buf.data(), n);
        std::vector<float> want = x;
        ref::Softmax(want.data(), n);
        // exp(x - max) is ~2 half-ulps, but x - max is rounded in f32: an absolute error of
        // |x - max| half-ulps in the exponent, i.e. that much relative error after exp. The sum
        // and the scale add a few more.
        CHECK(
            CountMismatches(
                buf.data(), want.data(), n,
                [&](size_t i) { return (8 + 2 * std::fabs(x[i] - max)) * kUlp * want[i] + 1e-40; },
                "Softmax") == 0);
        CHECK(buf.GuardIntact());
        double total = 0.0;
        for (size_t i = 0; i < n; ++i) total += buf[i];
        if (n > 0) CHECK(std::fabs(total - 1.0) < 1e-6);

        buf.CopyFrom(x);
        LogSoftmax(buf.data(), n);
        want = x;
        ref::LogSoftmax(want.data(), n);
        // Two f32 subtractions: a few half-ulps of the operands' magnitudes.
        CHECK(CountMismatches(
                  buf.data(), want.data(), n,
                  [&](size_t i) {
                    return 4 * kUlp * (std::fabs(x[i] - max) + std::fabs(want[i]) + 1);
                  },
                  "LogSoftmax") == 0);
        CHECK(buf.GuardIntact());
      }
    }
  });
}

TEST_CASE("Softmax handles huge logits, ties and masked entries") {
  ForEachTarget([](const std::string&) {
    float x[5] = {1e4f, -1e4f, 1e4f, kNegInf, 3e38f};
    Softmax(x, 5);
    CHECK(x[0] == 0.0f);
    CHECK(x[1] == 0.0f);
    CHECK(x[3] == 0.0f);
    CHECK(x[4] == 1.0f);
    std::vector<float> flat(37, 2.5f);
    Softmax(flat.data(), flat.size());
    for (float p : flat) CHECK(p == doctest::Approx(1.0 / 37).epsilon(1e-6));
    float one = -7.0f;
    Softmax(&one, 1);
    CHECK(one == 1.0f);
    float lx[3] = {1e4f, 0.0f, kNegInf};
    LogSoftmax(lx, 3);
    CHECK(lx[0] == 0.0f);
    CHECK(lx[1] == -1e4f);
    CHECK(lx[2] == kNegInf);
  });
}

// softmax(s) . V in double: the answer every online combination must reproduce.
std::vector<double> ExactAttention(const std::vector<float>& s, const std::vector<float>& v,
                                   size_t d, std::vector<double>* scale) {
  const size_t k = s.size();
  const double max = *std::max_element(s.begin(), s.end());
  double z = 0.0;
  std::vector<double> y(d, 0.0);
  scale->assign(d, 0.0);
  for (size_t j = 0; j < k; ++j) {
    const double p = std::exp(s[j] - max);
    z += p;
    for (size_t i = 0; i < d; ++i) {
      y[i] += p * v[j * d + i];
      (*scale)[i] += p * std::fabs(v[j * d + i]);
    }
  }
  for (size_t i = 0; i < d; ++i) {
    y[i] /= z;
    (*scale)[i] /= z;
  }
  return y;
}

struct State {
  float m, z;
  std::vector<float> y;
  explicit State(size_t d) : y(d + 1, 123.0f) { OnlineSoftmaxReset(&m, &z, y.data(), d); }
};

// Each key costs a rescale and an FMA, a few half-ulps of the running sum of |p v|: (8 + 4k)
// half-ulps of scale[i] bounds the drift.
size_t CountBad(const State& st, const std::vector<double>& want, const std::vector<double>& scale,
                size_t k, const char* what) {
  std::vector<float> out(want.size());
  OnlineSoftmaxOutput(st.z, st.y.data(), out.data(), want.size());
  std::vector<float> wantf(want.begin(), want.end());
  return CountMismatches(
      out.data(), wantf.data(), want.size(),
      [&](size_t i) { return (8.0 + 4.0 * k) * kUlp * scale[i] + 1e-30; },
      std::string(what).c_str());
}

TEST_CASE("Online softmax: updates, blocks and merges at every split equal softmax(s) . V") {
  ForEachTarget([](const std::string&) {
    for (size_t d : {1, 5, 16, 64, 67}) {
      for (size_t k : {1, 2, 7, 37}) {
        CAPTURE(d);
        CAPTURE(k);
        std::vector<float> s = RandomVector(k, -6.0f, 6.0f, 101 + k * d);
        if (k > 2) s[1] = kNegInf;  // A masked key.
        const std::vector<float> v = RandomVector(k * d, -2.0f, 2.0f, 102 + k * d);
        std::vector<double> scale;
        const std::vector<double> want = ExactAttention(s, v, d, &scale);

        // One key at a time, SIMD and reference.
        State seq(d), seq_ref(d);
        for (size_t j = 0; j < k; ++j) {
          OnlineSoftmaxUpdate(&seq.m, &seq.z, seq.y.data(), s[j], v.data() + j * d, d);
          ref::OnlineSoftmaxUpdate(&seq_ref.m, &seq_ref.z, seq_ref.y.data(), s[j], v.data() + j * d,
                                   d);
        }
        CHECK(CountBad(seq, want, scale, k, "sequential") == 0);
        CHECK(CountBad(seq_ref, want, scale, k, "sequential reference") == 0);
        CHECK(seq.y[d] == 123.0f);  // Nothing written past y[d - 1].

        for (size_t split = 0; split <= k; ++split) {
          CAPTURE(split);
          // Two blocks.
          State blk(d);
          OnlineSoftmaxUpdateBlock(&blk.m, &blk.z, blk.y.data(), s.data(), v.data(), d, split, d);
          OnlineSoftmaxUpdateBlock(&blk.m, &blk.z, blk.y.data(), s.data() + split,
                                   v.data() + split * d, d, k - split, d);
          CHECK(CountBad(blk, want, scale, k, "two blocks") == 0);

          // Two independent partial states merged (either way round), SIMD and reference.
          State a(d), b(d), a_ref(d), b_ref(d);
          for (size_t j = 0; j < k; ++j) {
            State& t = j < split ? a : b;
            State& t_ref = j < split ? a_ref : b_ref;
            OnlineSoftmaxUpdate(&t.m, &t.z, t.y.data(), s[j], v.data() + j * d, d);
            ref::OnlineSoftmaxUpdate(&t_ref.m, &t_ref.z, t_ref.y.data(), s[j], v.data() + j * d, d);
          }
          State ab = a, ba = b;
          OnlineSoftmaxMerge(&ab.m, &ab.z, ab.y.data(), b.m, b.z, b.y.data(), d);
          OnlineSoftmaxMerge(&ba.m, &ba.z, ba.y.data(), a.m, a.z, a.y.data(), d);
          ref::OnlineSoftmaxMerge(&a_ref.m, &a_ref.z, a_ref.y.data(), b_ref.m, b_ref.z,
                                  b_ref.y.data(), d);
          CHECK(CountBad(ab, want, scale, k, "merge a+b") == 0);
          CHECK(CountBad(ba, want, scale, k, "merge b+a") == 0);
          CHECK(CountBad(a_ref, want, scale, k, "reference merge") == 0);
          CHECK(ab.m == ba.m);
        }

        // Three-way tree: ((first third) + (last third)) + (middle third), merge is associative
        // and commutative.
        const size_t c1 = k / 3, c2 = 2 * k / 3;
        State p0(d), p1(d), p2(d);
        OnlineSoftmaxUpdateBlock(&p0.m, &p0.z, p0.y.data(), s.data(), v.data(), d, c1, d);
        OnlineSoftmaxUpdateBlock(&p1.m, &p1.z, p1.y.data(), s.data() + c1, v.data() + c1 * d, d,
                                 c2 - c1, d);
        OnlineSoftmaxUpdateBlock(&p2.m, &p2.z, p2.y.data(), s.data() + c2, v.data() + c2 * d, d,
                                 k - c2, d);
        OnlineSoftmaxMerge(&p0.m, &p0.z, p0.y.data(), p2.m, p2.z, p2.y.data(), d);
        OnlineSoftmaxMerge(&p0.m, &p0.z, p0.y.data(), p1.m, p1.z, p1.y.data(), d);
        CHECK(CountBad(p0, want, scale, k, "tree") == 0);
      }
    }
  });
}

TEST_CASE("Online softmax: masked keys and empty states change nothing") {
  ForEachTarget([](const std::string&) {
    const size_t d = 9;
    const std::vector<float> v = RandomVector(d, -1.0f, 1.0f, 111);
    State st(d);
    OnlineSoftmaxUpdate(&st.m, &st.z, st.y.data(), kNegInf, v.data(), d);
    CHECK(st.m == kNegInf);
    CHECK(st.z == 0.0f);
    const float all_masked[2] = {kNegInf, kNegInf};
    std::vector<float> vv(2 * d, 1.0f);
    OnlineSoftmaxUpdateBlock(&st.m, &st.z, st.y.data(), all_masked, vv.data(), d, 2, d);
    CHECK(st.m == kNegInf);
    std::vector<float> out(d, 5.0f);
    OnlineSoftmaxOutput(st.z, st.y.data(), out.data(), d);
    for (size_t i = 0; i < d; ++i) CHECK(out[i] == 0.0f);  // Empty attention: zeros, not NaN.

    OnlineSoftmaxUpdate(&st.m, &st.z, st.y.data(), 0.5f, v.data(), d);
    State empty(d);
    State merged = st;
    OnlineSoftmaxMerge(&merged.m, &merged.z, merged.y.data(), empty.m, empty.z, empty.y.data(), d);
    CHECK(merged.m == st.m);
    CHECK(merged.z == st.z);
    CHECK(merged.y == st.y);
    OnlineSoftmaxMerge(&empty.m, &empty.z, empty.y.data(), st.m, st.z, st.y.data(), d);
    CHECK(empty.m == st.m);
    CHECK(empty.z == st.z);
    CHECK(std::equal(st.y.begin(), st.y.begin() + d, empty.y.begin()));
    OnlineSoftmaxOutput(st.z, st.y.data(), out.data(), d);
    for (size_t i = 0; i < d; ++i) CHECK(out[i] == v[i]);  // One key: its value, exactly.
  });
}

}  // namespace
}  // namespace recur::ops
