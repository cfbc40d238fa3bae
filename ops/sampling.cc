#include "ops/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "ops/activation.h"
#include "ops/elementwise.h"

namespace recur::ops {

namespace {

// Probabilities here are in [0, 1], so their f32 bit patterns order like the values. Keying on the
// exponent and the top 3 mantissa bits (kBucketShift = 23 - 3) gives 8 buckets per octave and
// kBuckets keys in all; a bucket spans a probability ratio of at most 1.09.
constexpr int kBucketShift = 20;
constexpr size_t kBuckets = (0x3F800000u >> kBucketShift) + 1;

uint32_t BucketOf(float prob) {
  uint32_t bits;
  std::memcpy(&bits, &prob, sizeof(bits));
  return bits >> kBucketShift;
}

// Reorders first[0, k) so that its nucleus comes first and returns the nucleus size: the shortest
// most-likely-first prefix whose mass reaches top_p of the mass of first[0, k). *nucleus_mass gets
// that prefix's mass. Sorting k tokens through an index costs ~1 ms for a 50k vocabulary, so:
//  1. one pass builds a mass histogram over probability buckets and finds the bucket where the
//     cumulative mass (most likely first) crosses the threshold: every token in a more likely
//     bucket is in the nucleus and every token in a less likely one is out;
//  2. one partition pass moves the sure tokens to the front and the boundary bucket after them;
//  3. a mass-weighted quickselect (nth_element halving) narrows the boundary bucket, which holds
//     few tokens unless the distribution is nearly flat, and a final sort of <= kSortBelow tokens
//     pins the exact cut.
// The order of tokens inside the nucleus is whatever these steps leave: the draw needs none.
size_t NucleusSize(const float* p, int32_t* first, size_t k, float top_p, double* nucleus_mass) {
  double bucket_mass[kBuckets] = {};
  uint32_t bucket_count[kBuckets] = {};
  double total = 0.0;
  for (size_t i = 0; i < k; ++i) {
    const float prob = p[first[i]];
    const uint32_t b = BucketOf(prob);
    bucket_mass[b] += prob;
    ++bucket_count[b];
    total += prob;
  }
  const double threshold = static_cast<double>(top_p) * total;
  size_t boundary = kBuckets - 1;
  double mass_above = 0.0;  // Mass of the buckets more likely than `boundary`.
  while (boundary > 0 && mass_above + bucket_mass[boundary] < threshold) {
    mass_above += bucket_mass[boundary--];
  }
  const uint32_t cut = static_cast<uint32_t>(boundary);
  int32_t* const sure_end =
      std::partition(first, first + k, [p, cut](int32_t t) { return BucketOf(p[t]) > cut; });
  int32_t* const boundary_end =
      std::partition(sure_end, first + k, [p, cut](int32_t t) { return BucketOf(p[t]) == cut; });

  // Descending probability, ties by ascending index (see Sample).
  const auto more_likely = [p](int32_t a, int32_t b) {
    return p[a] > p[b] || (p[a] == p[b] && a < b);
  };
  // [0, lo) is inside the nucleus (each more likely than all of [lo, hi)), [hi, k) outside.
  size_t lo = static_cast<size_t>(sure_end - first);
  size_t hi = static_cast<size_t>(boundary_end - first);
  double mass_before_lo = mass_above;
  // Below this many candidates one sort beats more partition rounds.
  constexpr size_t kSortBelow = 64;
  while (hi - lo > kSortBelow) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(first + lo, first + mid, first + hi, more_likely);
    double upper = 0.0;
    for (size_t i = lo; i < mid; ++i) upper += p[first[i]];
    if (mass_before_lo + upper >= threshold) {
      hi = mid;
    } else {
      mass_before_lo += upper;
      lo = mid;
    }
  }
  std::sort(first + lo, first + hi, more_likely);
  size_t kept = hi;  // If rounding leaves the walk just short of the threshold: all up to hi.
  double cumulative = mass_before_lo;
  for (size_t i = lo; i < hi; ++i) {
    cumulative += p[first[i]];
    if (cumulative >= threshold) {
      kept = i + 1;
      break;
    }
  }
  if (kept == 0) kept = 1;  // Degenerate input (all zero): keep the first token.
  double mass = 0.0;
  for (size_t i = 0; i < kept; ++i) mass += p[first[i]];
  *nucleus_mass = mass;
  return kept;
}

// Inverse-CDF draw from unnormalised probabilities p[0, n) (no truncation: no index needed).
int32_t DrawFrom(const float* p, size_t n, Rng& rng) {
  double mass = 0.0;
  for (size_t i = 0; i < n; ++i) mass += p[i];
  const double r = rng.Uniform() * mass;
  double cumulative = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cumulative += p[i];
    if (r < cumulative) return static_cast<int32_t>(i);
  }
  for (size_t i = n; i-- > 0;) {  // r rounded up to the total: the last non-zero token.
    if (p[i] > 0.0f) return static_cast<int32_t>(i);
  }
  return 0;
}

}  // namespace

int32_t ArgMax(const float* logits, size_t n) {
  if (n == 0) return -1;
  int32_t best = 0;
  float best_value = logits[0];
  for (size_t i = 1; i < n; ++i) {
    // Strictly greater: ties keep the lowest index. A NaN best (logits[0]) is replaced by the
    // first number.
    if (logits[i] > best_value || (std::isnan(best_value) && !std::isnan(logits[i]))) {
      best = static_cast<int32_t>(i);
      best_value = logits[i];
    }
  }
  return best;
}

void ApplyRepetitionPenalty(float* logits, const float* counts, size_t n, float presence,
                            float frequency) {
  for (size_t i = 0; i < n; ++i) {
    if (counts[i] > 0.0f) logits[i] -= presence + frequency * counts[i];
  }
}

void RecordToken(float* counts, size_t n, int32_t token, float decay, float weight) {
  if (decay != 1.0f) {
    for (size_t i = 0; i < n; ++i) counts[i] *= decay;
  }
  if (token >= 0 && static_cast<size_t>(token) < n) counts[token] += weight;
}

int32_t Sample(const float* logits, size_t n, const SamplerParams& params, Rng& rng, float* scratch,
               int32_t* idx_scratch, const float* counts) {
  if (n == 0) return -1;
  if (counts == nullptr || (params.presence_penalty == 0.0f && params.frequency_penalty == 0.0f)) {
    return Sample(logits, n, params, rng, scratch, idx_scratch);
  }
  // The penalised copy goes into scratch and is sampled from there: Sample's only pass over its
  // logits writes scratch[i] from logits[i] element by element, so the two may alias.
  std::memcpy(scratch, logits, n * sizeof(float));
  ApplyRepetitionPenalty(scratch, counts, n, params.presence_penalty, params.frequency_penalty);
  return Sample(scratch, n, params, rng, scratch, idx_scratch);
}

int32_t Sample(const float* logits, size_t n, const SamplerParams& params, Rng& rng, float* scratch,
               int32_t* idx_scratch) {
  if (n == 0) return -1;
  if (params.temperature <= 0.0f || params.top_k == 1 || params.top_p <= 0.0f) {
    return ArgMax(logits, n);
  }

  // Unnormalised probabilities exp((l - max) / T) in (0, 1], the most likely token at exactly 1;
  // the normalisation is applied at the end over whichever set survives.
  const float max = MaxValue(logits, n);
  const float inv_t = 1.0f / params.temperature;
  // All masked, or a temperature so small that 1/T overflows: nothing to draw from but the argmax.
  if (max == -INFINITY || !std::isfinite(inv_t)) return ArgMax(logits, n);
  for (size_t i = 0; i < n; ++i) scratch[i] = (logits[i] - max) * inv_t;
  ExpInPlace(scratch, n);

  const float* p = scratch;
  // Descending probability, ties by ascending index: a strict total order, so the kept sets and
  // their order do not depend on how std::nth_element / std::sort happen to arrange equal keys.
  const auto more_likely = [p](int32_t a, int32_t b) {
    return p[a] > p[b] || (p[a] == p[b] && a < b);
  };
  const bool truncate =
      (params.top_k > 0 && static_cast<size_t>(params.top_k) < n) || params.top_p < 1.0f;
  if (!truncate) return DrawFrom(p, n, rng);

  std::iota(idx_scratch, idx_scratch + n, 0);
  int32_t* const first = idx_scratch;

  size_t k = n;
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < n) {
    k = static_cast<size_t>(params.top_k);
    std::nth_element(first, first + k, first + n, more_likely);  // [0, k) = the top k.
  }

  size_t kept = k;
  double kept_mass = 0.0;
  if (params.top_p >= 1.0f) {
    for (size_t i = 0; i < k; ++i) kept_mass += p[first[i]];
  } else {
    kept = NucleusSize(p, first, k, params.top_p, &kept_mass);
  }

  // Inverse-CDF draw over the kept set.
  const double r = rng.Uniform() * kept_mass;
  double cumulative = 0.0;
  for (size_t i = 0; i < kept; ++i) {
    cumulative += p[first[i]];
    if (r < cumulative) return first[i];
  }
  // r rounded up to the total: the last token with non-zero probability.
  for (size_t i = kept; i-- > 0;) {
    if (p[first[i]] > 0.0f) return first[i];
  }
  return first[0];
}

}  // namespace recur::ops
