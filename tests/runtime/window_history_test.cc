// softmax_attention window mode: the work of a step does not depend on how long the stream has
// run. A step at any position, however many times the ring has wrapped, writes the position
// header and the one ring row of that position and nothing else of the state, and the bytes in
// use stay W rows. (A full clear or copy of the ring per step, or a position-dependent slot,
// would fail this.) Written while chasing memory_vs_context's "stalled" windowed family, which
// turned out to be the benchmark's time budget (bench/context_budget.h), not the block.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "runtime/threads.h"
#include "tests/runtime/attention_test_util.h"

namespace recur {
namespace {

TEST_CASE("softmax_attention window: each step writes the header and one ring row, at any position") {
  constexpr int kD = 32, kHeads = 4, kKvHeads = 2, kHd = 8, kVocab = 11;
  constexpr size_t kWindow = 8, kHeaderFloats = 16;
  constexpr size_t kRow = 2 * kKvHeads * kHd;  // (k, v) of one token.
  fb::ModelT m = testing::TokenModel(kD, kVocab);
  auto layer = std::make_unique<fb::LayerT>();
  fb::SoftmaxAttentionSpecT s;
  s.n_heads = kHeads;
  s.n_kv_heads = kKvHeads;
  s.head_dim = kHd;
  s.rope = "half";
  s.rope_base = 100.0f;
  s.mode = "window";
  s.window = kWindow;
  layer->block.Set(std::move(s));
  layer->norm = fb::NormKind::None;
  m.layers.push_back(std::move(layer));
  testing::TempDir dir;
  const std::string path = dir.File("window.recur");
  testing::Weights w;
  testing::WriteRandomModel(std::move(m), path, &w, 5, 2.0f);

  testing::BlockRunner r(path, 0, 1);
  REQUIRE(r.state_floats == kHeaderFloats + kWindow * kRow);
  Threads threads(1);
  const size_t steps = 12 * kWindow + 5;
  const std::vector<float> x = testing::RandomInputs(steps * kD, 6);
  std::vector<float> out(kD);
  size_t bad_steps = 0;
  for (size_t p = 0; p < steps; ++p) {
    const std::vector<float> before(r.state.begin(), r.state.begin() + r.state_floats);
    r.block->Step(x.data() + p * kD, out.data(), r.state.data(), r.scratch.data(), threads);
    const size_t slot = p % kWindow;
    size_t outside = 0;
    for (size_t i = kHeaderFloats; i < r.state_floats; ++i) {
      const size_t row = (i - kHeaderFloats) / kRow;
      if (row != slot && std::memcmp(&before[i], &r.state[i], sizeof(float)) != 0) ++outside;
    }
    if (outside != 0 && bad_steps++ == 0) {
      MESSAGE("step at position ", p, " changed ", outside, " floats outside ring row ", slot);
    }
    // The row of this position holds the new (k, v): it changed (random inputs, non-zero).
    bool row_written = false;
    for (size_t i = 0; i < kRow; ++i) {
      const size_t at = kHeaderFloats + slot * kRow + i;
      row_written = row_written || std::memcmp(&before[at], &r.state[at], sizeof(float)) != 0;
    }
    CHECK(row_written);
    const size_t in_use = r.block->StateBytesInUse(r.state.data());
    CHECK(in_use == (kHeaderFloats + std::min(p + 1, kWindow) * kRow) * sizeof(float));
  }
  CHECK(bad_steps == 0);
}

}  // namespace
}  // namespace recur
