// Tests ops/sampling.h: greedy paths, determinism, and the sampled frequencies against the
// truncated distribution computed independently in double.
#include "ops/sampling.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "tests/ops/elem_test_util.h"

namespace recur::ops {
namespace {

using testing::RandomVector;

// The distribution Sample should draw from, computed directly: softmax(logits / T) in double,
// keep the top_k (0 = all), then the smallest most-likely prefix whose renormalised mass reaches
// top_p, renormalised. Ties are broken by index, as Sample does.
std::vector<double> TruncatedDistribution(const std::vector<float>& logits, double temperature,
                                          int top_k, double top_p) {
  const size_t n = logits.size();
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = std::exp((logits[i] - max) / temperature);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  const size_t k = top_k > 0 ? std::min<size_t>(top_k, n) : n;
  double mass_k = 0.0;
  for (size_t i = 0; i < k; ++i) mass_k += p[order[i]];
  size_t kept = 0;
  double cumulative = 0.0;
  while (kept < k) {
    cumulative += p[order[kept++]] / mass_k;
    if (cumulative >= top_p) break;
  }
  std::vector<double> q(n, 0.0);
  double mass = 0.0;
  for (size_t i = 0; i < kept; ++i) mass += p[order[i]];
  for (size_t i = 0; i < kept; ++i) q[order[i]] = p[order[i]] / mass;
  return q;
}

struct Sampler {
  explicit Sampler(size_t n) : scratch(n), idx(n) {}
  int32_t operator()(const std::vector<float>& logits, const SamplerParams& params, Rng& rng) {
    return Sample(logits.data(), logits.size(), params, rng, scratch.data(), idx.data());
  }
  std::vector<float> scratch;
  std::vector<int32_t> idx;
};

TEST_CASE("Rng is deterministic per seed, distinct across seeds and uniform on the unit interval") {
  Rng a(42), b(42), c(43);
  bool all_same_as_c = true;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t va = a.Next();
    CHECK(va == b.Next());
    all_same_as_c = all_same_as_c && va == c.Next();
  }
  CHECK_FALSE(all_same_as_c);

  Rng u(7);
  double sum = 0.0, lo = 1.0, hi = 0.0;
  const int kDraws = 100000;
  for (int i = 0; i < kDraws; ++i) {
    const double x = u.Uniform();
    REQUIRE(x >= 0.0);
    REQUIRE(x < 1.0);
    sum += x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  // Mean of U(0,1) has standard deviation sqrt(1/12 / 1e5) = 9.1e-4; allow 5 sigma.
  CHECK(std::fabs(sum / kDraws - 0.5) < 5 * 9.1e-4);
  CHECK(lo < 1e-3);
  CHECK(hi > 1 - 1e-3);

  // Saving and restoring the state replays the stream.
  const auto saved = u.State();
  const uint64_t next1 = u.Next(), next2 = u.Next();
  u.SetState(saved);
  CHECK(u.Next() == next1);
  CHECK(u.Next() == next2);
  // Seed 0 is as good as any (splitmix64 never leaves the state all zero).
  Rng zero(0);
  CHECK(zero.Next() != 0);
}

TEST_CASE("ArgMax: ties go to the lowest index, NaN is never chosen") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> ties = {1.0f, 3.0f, -2.0f, 3.0f};
  CHECK(ArgMax(ties.data(), ties.size()) == 1);
  const std::vector<float> leading_nan = {nan, -5.0f, -1.0f, nan, -1.0f};
  CHECK(ArgMax(leading_nan.data(), leading_nan.size()) == 2);
  const float one = -3.0f;
  CHECK(ArgMax(&one, 1) == 0);
  CHECK(ArgMax(nullptr, 0) == -1);
}

TEST_CASE("Greedy paths: temperature 0, top_k 1 and a tiny top_p all give the argmax") {
  Sampler sampler(1000);
  for (uint32_t trial = 0; trial < 50; ++trial) {
    const std::vector<float> logits = RandomVector(1000, -5.0f, 5.0f, 200 + trial);
    const int32_t best = ArgMax(logits.data(), logits.size());
    Rng rng(trial);
    SamplerParams greedy;
    greedy.temperature = 0.0f;
    CHECK(sampler(logits, greedy, rng) == best);
    SamplerParams top1;
    top1.temperature = 1.5f;
    top1.top_k = 1;
    CHECK(sampler(logits, top1, rng) == best);
    SamplerParams tiny_p;
    tiny_p.temperature = 1.0f;
    tiny_p.top_p = 1e-6f;  // Below the argmax's own probability: the nucleus is just the argmax.
    CHECK(sampler(logits, tiny_p, rng) == best);
    SamplerParams zero_p;
    zero_p.top_p = 0.0f;
    CHECK(sampler(logits, zero_p, rng) == best);
  }
  // A temperature so small that 1/T overflows is still greedy, not NaN.
  const std::vector<float> logits = {0.5f, 2.0f, 1.0f};
  Rng rng(1);
  SamplerParams cold;
  cold.temperature = 1e-45f;
  CHECK(sampler(logits, cold, rng) == 1);
}

TEST_CASE("Same seed gives the same sequence, and masked tokens are never drawn") {
  const size_t n = 300;
  std::vector<float> logits = RandomVector(n, -2.0f, 2.0f, 300);
  for (size_t i = 0; i < n; i += 3) logits[i] = -std::numeric_limits<float>::infinity();
  SamplerParams params;
  params.temperature = 0.9f;
  params.top_k = 100;
  params.top_p = 0.95f;
  params.seed = 1234;
  Sampler sampler(n);
  Rng a(params.seed), b(params.seed), c(params.seed + 1);
  std::vector<int32_t> seq_a, seq_b, seq_c;
  for (int i = 0; i < 500; ++i) {
    seq_a.push_back(sampler(logits, params, a));
    seq_b.push_back(sampler(logits, params, b));
    seq_c.push_back(sampler(logits, params, c));
  }
  CHECK(seq_a == seq_b);
  CHECK(seq_a != seq_c);
  for (int32_t t : seq_a) {
    REQUIRE(t >= 0);
    REQUIRE(t < static_cast<int32_t>(n));
    CHECK(t % 3 != 0);
  }
}

// Draws `draws` tokens and checks every token's frequency against the truncated distribution:
// within 5 binomial standard deviations (plus 1e-3 for the tiniest ones), and never a token the
// truncation removed. The seed is fixed, so the test is deterministic; 5 sigma over <= 50 tokens
// would fail by chance with probability ~3e-5 for a correct sampler and a fresh seed.
void CheckFrequencies(const std::vector<float>& logits, const SamplerParams& params, int draws) {
  const std::vector<double> want =
      TruncatedDistribution(logits, params.temperature, params.top_k, params.top_p);
  Sampler sampler(logits.size());
  Rng rng(params.seed);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[sampler(logits, params, rng)];
  size_t bad = 0;
  for (size_t t = 0; t < logits.size(); ++t) {
    const double freq = static_cast<double>(counts[t]) / draws;
    const double sigma = std::sqrt(want[t] * (1 - want[t]) / draws);
    const bool ok = want[t] == 0.0 ? counts[t] == 0 : std::fabs(freq - want[t]) <= 5 * sigma + 1e-3;
    if (!ok && bad++ == 0) MESSAGE("token ", t, ": frequency ", freq, " expected ", want[t]);
  }
  CHECK(bad == 0);
}

TEST_CASE("Sampled frequencies follow the temperature / top-k / top-p distribution") {
  const std::vector<float> logits = {1.0f, 2.5f, 0.3f, 2.4f, -1.0f, 1.7f, 0.0f, 3.0f, 0.9f, 1.6f};
  const int kDraws = 20000;
  SUBCASE("temperature only") {
    SamplerParams p;
    p.temperature = 0.8f;
    p.seed = 11;
    CheckFrequencies(logits, p, kDraws);
  }
  SUBCASE("top_k") {
    SamplerParams p;
    p.temperature = 1.2f;
    p.top_k = 4;
    p.seed = 12;
    CheckFrequencies(logits, p, kDraws);
  }
  SUBCASE("top_p") {
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_p = 0.7f;
    p.seed = 13;
    CheckFrequencies(logits, p, kDraws);
  }
  SUBCASE("top_k then top_p") {
    SamplerParams p;
    p.temperature = 0.8f;
    p.top_k = 6;
    p.top_p = 0.85f;
    p.seed = 14;
    CheckFrequencies(logits, p, kDraws);
  }
  SUBCASE("a wider vocabulary") {
    SamplerParams p;
    p.temperature = 1.3f;
    p.top_k = 40;
    p.top_p = 0.9f;
    p.seed = 15;
    CheckFrequencies(RandomVector(50, -1.0f, 3.0f, 16), p, kDraws);
  }
  SUBCASE("a truncation that removes everything but a few") {
    // The most likely token holds ~0.59 of the mass and the top two ~0.95: top_p 0.8 keeps
    // exactly those two.
    SamplerParams p;
    p.top_p = 0.8f;
    p.seed = 17;
    CheckFrequencies({5.0f, 0.0f, 4.5f, 1.0f, 2.0f, 0.5f}, p, kDraws);
  }
}

TEST_CASE("A nucleus of thousands of tokens is exactly the top-p set, drawn in proportion") {
  // Logits spread over [0, 2]: a 0.9 nucleus holds thousands of the 5000 tokens and q (the
  // truncated distribution) varies 7x across it, so each probability bucket of the sampler holds
  // hundreds of tokens and its quickselect runs. Spread over [0, 0.05]: nearly flat, the whole
  // vocabulary falls in one or two buckets and the quickselect alone finds the cut.
  for (float spread : {2.0f, 0.05f}) {
    CAPTURE(spread);
    const size_t n = 5000;
    const std::vector<float> logits = RandomVector(n, 0.0f, spread, 400);
    SamplerParams p;
    p.top_p = 0.9f;
    p.seed = 18;
    const std::vector<double> want = TruncatedDistribution(logits, 1.0, 0, 0.9);
    const size_t nucleus = static_cast<size_t>(
        std::count_if(want.begin(), want.end(), [](double q) { return q > 0; }));
    CHECK(nucleus > 1000);
    CHECK(nucleus < n);
    // Under q, the drawn token's own probability q(t) has mean sum q^2 and variance
    // sum q^3 - (sum q^2)^2.
    double m2 = 0.0, m3 = 0.0;
    for (double q : want) {
      m2 += q * q;
      m3 += q * q * q;
    }
    const int kDraws = 2000;
    const double sigma = std::sqrt(std::max(m3 - m2 * m2, 0.0) / kDraws);
    Sampler sampler(n);
    Rng rng(p.seed);
    double mean_got = 0.0;
    size_t outside = 0;
    for (int i = 0; i < kDraws; ++i) {
      const int32_t t = sampler(logits, p, rng);
      outside += want[t] == 0.0 ? 1 : 0;
      mean_got += want[t];
    }
    mean_got /= kDraws;
    CHECK(outside == 0);  // Never a token past the cut, however many tokens share its bucket.
    CHECK(std::fabs(mean_got - m2) <= 5 * sigma + 1e-12);
    if (spread > 1.0f) {
      // A sampler drawing uniformly within the nucleus would be off by far more than 5 sigma.
      const double uniform_mean = 1.0 / static_cast<double>(nucleus);
      CHECK(std::fabs(uniform_mean - m2) > 10 * sigma);
    }
  }
}

// ---------------------------------------------------------------------- repetition penalties

TEST_CASE("Repetition penalty: logit - (presence + frequency * count) for counted tokens only") {
  std::vector<float> logits = {1.0f, 2.0f, -3.0f, 0.5f, 4.0f};
  const std::vector<float> counts = {0.0f, 1.0f, 2.5f, 0.0f, 0.25f};
  ApplyRepetitionPenalty(logits.data(), counts.data(), logits.size(), 0.4f, 0.2f);
  CHECK(logits[0] == 1.0f);  // Never drawn: untouched (no presence penalty either).
  CHECK(logits[1] == doctest::Approx(2.0 - 0.4 - 0.2 * 1.0).epsilon(1e-7));
  CHECK(logits[2] == doctest::Approx(-3.0 - 0.4 - 0.2 * 2.5).epsilon(1e-7));
  CHECK(logits[3] == 0.5f);
  CHECK(logits[4] == doctest::Approx(4.0 - 0.4 - 0.2 * 0.25).epsilon(1e-7));
  // -inf (masked) stays masked.
  std::vector<float> masked = {-std::numeric_limits<float>::infinity()};
  const float one = 1.0f;
  ApplyRepetitionPenalty(masked.data(), &one, 1, 0.4f, 0.2f);
  CHECK(masked[0] == -std::numeric_limits<float>::infinity());
}

TEST_CASE("RecordToken: each draw decays by decay per later draw, weighted, out-of-range ignored") {
  // counts[t] must equal sum over t's draws at step i of weight * decay^(draws after step i),
  // computed here in double from the draw list.
  const size_t n = 7;
  const float decay = 0.9f;
  const std::vector<int32_t> draws = {3, 1, 3, 3, 6, -1, 1, 0, 3, 99, 5, 3};
  auto weight = [](int32_t t) { return t == 5 ? 0.0f : t == 6 ? 0.5f : 1.0f; };
  std::vector<float> counts(n, 0.0f);
  for (int32_t t : draws) RecordToken(counts.data(), n, t, decay, weight(t));
  for (size_t t = 0; t < n; ++t) {
    double want = 0.0;
    for (size_t i = 0; i < draws.size(); ++i) {
      if (draws[i] == static_cast<int32_t>(t)) {
        want += weight(draws[i]) * std::pow(double{decay}, double(draws.size() - 1 - i));
      }
    }
    CHECK(counts[t] == doctest::Approx(want).epsilon(1e-6));
  }
  CHECK(counts[2] == 0.0f);
  CHECK(counts[5] == 0.0f);  // Weight 0: drawn but never penalised.
  // decay 1: plain counts.
  std::vector<float> plain(n, 0.0f);
  for (int32_t t : draws) RecordToken(plain.data(), n, t, 1.0f);
  CHECK(plain[3] == 5.0f);
  CHECK(plain[1] == 2.0f);
}

TEST_CASE("Sample with counts draws exactly as Sample over the penalised logits") {
  const size_t n = 500;
  const std::vector<float> logits = RandomVector(n, -4.0f, 4.0f, 900);
  std::vector<float> counts(n, 0.0f);
  for (size_t i = 0; i < n; i += 7) counts[i] = 0.1f * static_cast<float>(i % 13);
  for (const float temperature : {0.0f, 0.7f, 1.0f}) {
    SamplerParams params;
    params.temperature = temperature;
    params.top_p = 0.85f;
    params.presence_penalty = 0.5f;
    params.frequency_penalty = 0.3f;
    std::vector<float> penalised = logits;
    ApplyRepetitionPenalty(penalised.data(), counts.data(), n, 0.5f, 0.3f);
    std::vector<float> scratch(n);
    std::vector<int32_t> idx(n);
    Sampler plain(n);
    Rng a(7), b(7);
    for (int i = 0; i < 200; ++i) {
      const int32_t with_counts =
          Sample(logits.data(), n, params, a, scratch.data(), idx.data(), counts.data());
      CHECK(with_counts == plain(penalised, params, b));
    }
  }
  // No counts, or zero penalties: the plain sampler, same draws.
  SamplerParams params;
  params.top_p = 0.9f;
  std::vector<float> scratch(n);
  std::vector<int32_t> idx(n);
  Sampler plain(n);
  Rng a(8), b(8);
  for (int i = 0; i < 100; ++i) {
    CHECK(Sample(logits.data(), n, params, a, scratch.data(), idx.data(), counts.data()) ==
          plain(logits, params, b));
  }
}

TEST_CASE("Greedy with penalties stops repeating: a presence penalty walks down the ranking") {
  // Logits 10, 9, 8, ... : greedy alone repeats token 0 for ever. With presence 3.5 (a flat
  // penalty, however often drawn) each drawn token falls 3.5: 0, 1, 2, 3 in order, then token 0
  // (6.5) beats token 4 (6).
  const size_t n = 8;
  std::vector<float> logits(n);
  for (size_t i = 0; i < n; ++i) logits[i] = 10.0f - static_cast<float>(i);
  SamplerParams params;
  params.temperature = 0.0f;
  params.presence_penalty = 3.5f;
  std::vector<float> counts(n, 0.0f), scratch(n);
  std::vector<int32_t> idx(n);
  Rng rng(1);
  for (int32_t want : {0, 1, 2, 3, 0}) {
    const int32_t t = Sample(logits.data(), n, params, rng, scratch.data(), idx.data(), counts.data());
    CHECK(t == want);
    RecordToken(counts.data(), n, t, 1.0f);
  }
  // Frequency penalty: token 0 (10) against token 1 (9.5), frequency 0.3, decay 0.5. After k
  // straight draws of token 0 its count is 1 + 0.5 + ... = 2 - 2^(1-k); the logit 10 - 0.3 c
  // falls below 9.5 once c > 5/3, i.e. after 3 draws (c = 1.75): 0, 0, 0, then 1.
  std::vector<float> two = {10.0f, 9.5f};
  SamplerParams freq;
  freq.temperature = 0.0f;
  freq.frequency_penalty = 0.3f;
  std::vector<float> c2(2, 0.0f);
  std::vector<int32_t> got;
  for (int i = 0; i < 4; ++i) {
    const int32_t t = Sample(two.data(), 2, freq, rng, scratch.data(), idx.data(), c2.data());
    got.push_back(t);
    RecordToken(c2.data(), 2, t, 0.5f);
  }
  CHECK(got == std::vector<int32_t>{0, 0, 0, 1});
}

}  // namespace
}  // namespace recur::ops
