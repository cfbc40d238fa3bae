// Token sampling from logits: greedy, temperature, top-k, top-p (nucleus), with a small seeded
// random number generator so that a seed reproduces a stream exactly.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace recur::ops {

// xoshiro256** 1.0 (Blackman and Vigna, https://prng.di.unimi.it/): 256 bits of state, period
// 2^256 - 1, passes BigCrush and PractRand; a handful of shifts and rotations per draw. The state
// is filled from the seed with splitmix64 (as the authors recommend), so every seed, 0 included,
// gives a well-mixed non-zero state. Deterministic on every platform: same seed, same sequence.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { Seed(seed); }

  void Seed(uint64_t seed) {
    for (uint64_t& word : s_) {
      // splitmix64.
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      word = z ^ (z >> 31);
    }
  }

  // The next 64 random bits.
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits (every value a multiple of 2^-53).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // The raw state, to save and restore a session's sampler exactly.
  std::array<uint64_t, 4> State() const { return s_; }
  void SetState(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  std::array<uint64_t, 4> s_;
};

struct SamplerParams {
  // <= 0 means greedy (argmax). Otherwise logits are divided by it before the softmax.
  float temperature = 1.0f;
  // Keep only the top_k most likely tokens; 0 (or >= n) keeps all.
  int32_t top_k = 0;
  // Then keep the smallest set of most likely tokens whose probability (renormalised over the
  // top-k set) adds up to at least top_p; >= 1 keeps all, <= 0 keeps only the most likely.
  float top_p = 1.0f;
  // The seed the caller gives its Rng when a stream starts; Sample itself only draws from the Rng
  // it is handed, so a stream is reproducible from (seed, params, logits).
  uint64_t seed = 0;
  // Repetition penalties, as RWKV's samplers use them (the rwkv pip package's PIPELINE_ARGS
  // alpha_presence, alpha_frequency, alpha_decay; the presence and frequency penalties of the
  // OpenAI API): before the draw, every token with a count c > 0 has its logit lowered by
  // presence_penalty + frequency_penalty * c, where c counts the token's earlier draws, each draw
  // decayed by penalty_decay per token drawn since (see RecordToken). All zero: no penalty.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float penalty_decay = 1.0f;
};

// logits[i] -= presence + frequency * counts[i] for every i with counts[i] > 0 (in place).
// logits, counts: [n]
void ApplyRepetitionPenalty(float* logits, const float* counts, size_t n, float presence,
                            float frequency);

// Records a drawn token in the penalty counts: every count is multiplied by decay, then
// counts[token] += weight. A weight of 0 leaves the token unpenalised (RWKV's chat gives
// whitespace and digits weight 0, since text needs them over and over). A token outside [0, n)
// only decays the counts.  counts: [n]
void RecordToken(float* counts, size_t n, int32_t token, float decay, float weight = 1.0f);

// Index of the largest logit; ties go to the lowest index and NaN is never chosen (unless every
// logit is NaN: then 0). Returns -1 when n == 0.  logits: [n]
int32_t ArgMax(const float* logits, size_t n);

// Draws a token id from softmax(logits / temperature) restricted by top_k then top_p and
// renormalised. temperature <= 0, top_k == 1, or top_p <= 0 is greedy (ArgMax, no draw). Uses one
// rng.Uniform() per non-greedy call. Logits may be -inf (masked); NaN logits are not allowed.
// No heap allocation: the caller provides scratch. Returns -1 when n == 0.
// logits: [n]; scratch: [n] floats; idx_scratch: [n] (n <= INT32_MAX).
int32_t Sample(const float* logits, size_t n, const SamplerParams& params, Rng& rng, float* scratch,
               int32_t* idx_scratch);

// As above, with the repetition penalties of params applied first to a copy of the logits (in
// scratch; greedy takes the argmax of the penalised logits). counts: [n] decayed counts kept by
// the caller with RecordToken, or null for no penalty. The caller records the returned token.
int32_t Sample(const float* logits, size_t n, const SamplerParams& params, Rng& rng, float* scratch,
               int32_t* idx_scratch, const float* counts);

}  // namespace recur::ops
