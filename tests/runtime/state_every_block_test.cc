// For every block kind (recur synth's tiny presets): prefill == step, a state saved after t
// tokens and loaded into a fresh session continues bit-identically, and a fork and its parent
// continue independently.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "formats/synth.h"
#include "runtime/recur.hpp"
#include "tests/runtime/fixture_util.h"
#include "tests/test_util.h"

namespace recur {
namespace {

using testing::TempDir;

constexpr const char* kPresets[] = {"mamba-tiny",     "mamba2-tiny",          "rwkv7-tiny",
                                    "linear-attention-tiny", "retention-tiny", "gla-tiny",
                                    "attention-window-tiny", "attention-mha-tiny"};

std::string Synth(const TempDir& dir, const std::string& preset) {
  SynthOptions options;
  options.preset = preset;
  options.output = dir.File(preset + ".recur");
  auto report = Synthesize(options);
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  return options.output;
}

std::vector<int32_t> Tokens(size_t n, uint32_t seed) {
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    t[i] = static_cast<int32_t>(seed >> 24);  // 0..255: every tiny preset has 256 tokens.
  }
  return t;
}

TEST_CASE("Every block kind: prefill in chunks equals step by step") {
  TempDir dir;
  for (const char* preset : kPresets) {
    const std::string name = preset;
    CAPTURE(name);
    auto model = testing::LoadModel(Synth(dir, name), 1);
    const size_t vocab = static_cast<size_t>(model->info().vocab_size);
    const std::vector<int32_t> tokens = Tokens(75, 7);
    auto a = testing::NewSession(model);
    const std::vector<float> step = testing::StepLogits(*a, tokens, vocab);
    for (size_t chunk : {size_t{1}, size_t{7}, size_t{32}, tokens.size()}) {
      CAPTURE(chunk);
      auto b = testing::NewSession(model);
      std::vector<float> all(tokens.size() * vocab);
      for (size_t t0 = 0; t0 < tokens.size(); t0 += chunk) {
        const size_t n = std::min(chunk, tokens.size() - t0);
        REQUIRE(b->PrefillTokens(&tokens[t0], n, nullptr, &all[t0 * vocab]).ok());
      }
      const double err = testing::MaxAbsDiff(all.data(), step.data(), all.size());
      CHECK(err < 1e-4);
      // States are compared relative to their size: linear attention without decay accumulates
      // sums that grow with the stream (f32 rounding of the two summation orders).
      const size_t n = a->state_bytes() / sizeof(float);
      double scale = 1.0;
      for (size_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(double(a->state()[i])));
      CHECK(testing::MaxAbsDiff(b->state(), a->state(), n) / scale < 1e-5);
    }
  }
}

TEST_CASE("Every block kind: save, load into a fresh session, continue bit-identically; forks") {
  TempDir dir;
  for (const char* preset : kPresets) {
    const std::string name = preset;
    CAPTURE(name);
    auto model = testing::LoadModel(Synth(dir, name), 1);
    const size_t vocab = static_cast<size_t>(model->info().vocab_size);
    const std::vector<int32_t> head = Tokens(23, 3), tail = Tokens(17, 11), other = Tokens(17, 5);

    // The uninterrupted stream.
    auto full = testing::NewSession(model);
    testing::StepLogits(*full, head, vocab);
    const std::vector<float> expected = testing::StepLogits(*full, tail, vocab);

    auto saver = testing::NewSession(model);
    testing::StepLogits(*saver, head, vocab);
    std::vector<unsigned char> bytes(saver->saved_state_size());
    REQUIRE(saver->SaveState(bytes.data(), bytes.size()).ok());
    auto loaded = testing::NewSession(model);
    testing::StepLogits(*loaded, other, vocab);  // Whatever it held before is replaced.
    REQUIRE(loaded->LoadState(bytes.data(), bytes.size()).ok());
    CHECK(loaded->position() == static_cast<int64_t>(head.size()));
    const std::vector<float> resumed = testing::StepLogits(*loaded, tail, vocab);
    CHECK(std::memcmp(resumed.data(), expected.data(), expected.size() * sizeof(float)) == 0);

    // Fork after `head`: the fork takes `tail`, the parent `other`; each equals a fresh stream.
    auto forked = saver->Fork();
    REQUIRE_MESSAGE(forked.ok(), forked.status().message());
    const std::vector<float> parent_other = testing::StepLogits(*saver, other, vocab);
    const std::vector<float> fork_tail = testing::StepLogits(**forked, tail, vocab);
    CHECK(std::memcmp(fork_tail.data(), expected.data(), expected.size() * sizeof(float)) == 0);
    auto fresh = testing::NewSession(model);
    testing::StepLogits(*fresh, head, vocab);
    const std::vector<float> fresh_other = testing::StepLogits(*fresh, other, vocab);
    CHECK(std::memcmp(parent_other.data(), fresh_other.data(), fresh_other.size() * sizeof(float)) == 0);
  }
}

}  // namespace
}  // namespace recur
