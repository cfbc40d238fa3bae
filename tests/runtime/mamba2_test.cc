// Mamba-2 end to end against the official reference: the shared fixture mamba2-tiny (a
// Mamba2ForCausalLM checkpoint with the logits state-spaces/mamba computes for it; T = 100 tokens,
// SSD chunk 32) converted to .recur and run token by token and as a chunked prefill; prefill(k)
// then steps leaves the state of T steps; other weight dtypes stay within measured bounds; the
// state-spaces layout of the same checkpoint gives the same model.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "formats/convert.h"
#include "formats/hf_mamba2.h"
#include "runtime/recur.hpp"
#include "tests/runtime/fixture_util.h"
#include "tests/test_util.h"

namespace recur {
namespace {

namespace fs = std::filesystem;
using testing::ConvertTo;
using testing::kFixtureTolerance;
using testing::Fixture;
using testing::LoadFixture;
using testing::LoadModel;
using testing::MaxAbsDiff;
using testing::NewSession;
using testing::StateOf;
using testing::StepLogits;

// Prefill and steps compute the same recurrence with sums in different orders (matmul vs matvec
// projections; the chunked SSD's C B^T products and segment sums vs the step's decayed state),
// so their states differ by f32 rounding. The largest state elements here are ~2 (the test
// prints the maximum) and each is a sum of up to T = 100 decayed terms, so a few ulp of ~2 per
// step, ~1e-6, is the expected size; measured 9.5e-7. 5e-6 leaves ~5x and is still four orders
// of magnitude below what a wrong decay or a dropped term gives (~1e-2).
constexpr double kStateTolerance = 5e-6;


TEST_CASE("mamba2: converted mamba2-tiny matches the official reference, step by step") {
  const std::optional<Fixture> f = LoadFixture("mamba2-tiny");
  if (!f) return;
  testing::TempDir dir;
  const std::string path = ConvertTo(f->dir, dir, DType::kF32, "mamba2");
  for (int n_threads : {1, 2}) {
    CAPTURE(n_threads);
    auto model = LoadModel(path, n_threads);
    CHECK(model->info().architecture == "mamba2");
    REQUIRE(model->info().layers.size() == 2);
    CHECK(model->info().layers[0].kind == "mamba2");
    CHECK(model->info().layers[0].runnable);
    // The conv window (d_conv - 1) x conv_dim, conv_dim = 128 + 2 * 16, then 8 heads x 16 x 16.
    CHECK(model->info().layers[0].state_bytes == (3 * 160 + 8 * 16 * 16) * sizeof(float));
    CHECK(static_cast<size_t>(model->info().vocab_size) == f->vocab);
    auto session = NewSession(model);
    const std::vector<float> got = StepLogits(*session, f->tokens, f->vocab);
    const double vs_step = MaxAbsDiff(got.data(), f->logits_step.data(), got.size());
    const double vs_full = MaxAbsDiff(got.data(), f->logits.data(), got.size());
    MESSAGE("f32 step, ", n_threads, " thread(s): max |diff| vs logits_step.f32 ", vs_step,
            ", vs logits.f32 ", vs_full);
    CHECK(vs_step <= kFixtureTolerance);
    CHECK(vs_full <= kFixtureTolerance);
    CHECK(session->position() == static_cast<int64_t>(f->tokens.size()));
  }
}

TEST_CASE("mamba2: a chunked prefill of every token matches the official reference") {
  const std::optional<Fixture> f = LoadFixture("mamba2-tiny");
  if (!f) return;
  testing::TempDir dir;
  const std::string path = ConvertTo(f->dir, dir, DType::kF32, "mamba2");
  std::vector<float> one_thread;
  for (int n_threads : {1, 2}) {
    CAPTURE(n_threads);
    auto model = LoadModel(path, n_threads);
    auto session = NewSession(model);
    std::vector<float> all(f->tokens.size() * f->vocab);
    const float* last = nullptr;
    REQUIRE(session->PrefillTokens(f->tokens.data(), f->tokens.size(), &last, all.data()).ok());
    const double vs_full = MaxAbsDiff(all.data(), f->logits.data(), all.size());
    const double vs_step = MaxAbsDiff(all.data(), f->logits_step.data(), all.size());
    MESSAGE("f32 prefill, ", n_threads, " thread(s): max |diff| vs logits.f32 ", vs_full,
            ", vs logits_step.f32 ", vs_step);
    CHECK(vs_full <= kFixtureTolerance);
    CHECK(vs_step <= kFixtureTolerance);
    REQUIRE(last != nullptr);
    CHECK(std::memcmp(last, all.data() + (f->tokens.size() - 1) * f->vocab,
                      f->vocab * sizeof(float)) == 0);
    // Threads split rows, heads and (group, chunk) items, never a sum: same bits for any count.
    if (n_threads == 1) {
      one_thread = all;
    } else {
      CHECK(std::memcmp(all.data(), one_thread.data(), all.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("mamba2: prefill(k) then steps leaves the state of T steps, for k across chunks") {
  const std::optional<Fixture> f = LoadFixture("mamba2-tiny");
  if (!f) return;
  testing::TempDir dir;
  const std::string path = ConvertTo(f->dir, dir, DType::kF32, "mamba2");
  const std::vector<int32_t>& tokens = f->tokens;
  const size_t T = tokens.size();
  std::vector<float> steps_state_1thread;
  double worst_state = 0.0, worst_logits = 0.0;
  for (int n_threads : {1, 2}) {
    CAPTURE(n_threads);
    auto model = LoadModel(path, n_threads);
    auto session = NewSession(model);
    StepLogits(*session, tokens, f->vocab);
    const std::vector<float> steps_state = StateOf(*session);
    if (n_threads == 1) {
      steps_state_1thread = steps_state;
    } else {
      CHECK(std::memcmp(steps_state.data(), steps_state_1thread.data(),
                        steps_state.size() * sizeof(float)) == 0);
    }
    // k: inside the first chunk, at and around chunk boundaries (32, 64, 96), ragged, all.
    for (size_t k : {size_t{1}, size_t{5}, size_t{31}, size_t{32}, size_t{33}, size_t{53},
                     size_t{64}, size_t{97}, size_t{99}, T}) {
      CAPTURE(k);
      session->Reset();
      REQUIRE(session->PrefillTokens(tokens.data(), k, nullptr).ok());
      const float* logits = nullptr;
      for (size_t t = k; t < T; ++t) REQUIRE(session->StepToken(tokens[t], &logits).ok());
      const double state_diff =
          MaxAbsDiff(StateOf(*session).data(), steps_state.data(), steps_state.size());
      worst_state = std::max(worst_state, state_diff);
      CHECK(state_diff <= kStateTolerance);
      if (logits != nullptr) {
        const double d = MaxAbsDiff(logits, f->logits.data() + (T - 1) * f->vocab, f->vocab);
        worst_logits = std::max(worst_logits, d);
        CHECK(d <= kFixtureTolerance);
      }
      // Two prefills, [0, k) and [k, T): the chunk boundaries move, the state does not.
      if (k < T) {
        session->Reset();
        REQUIRE(session->PrefillTokens(tokens.data(), k, nullptr).ok());
        REQUIRE(session->PrefillTokens(tokens.data() + k, T - k, &logits).ok());
        const double split_diff =
            MaxAbsDiff(StateOf(*session).data(), steps_state.data(), steps_state.size());
        worst_state = std::max(worst_state, split_diff);
        CHECK(split_diff <= kStateTolerance);
        CHECK(MaxAbsDiff(logits, f->logits.data() + (T - 1) * f->vocab, f->vocab) <=
              kFixtureTolerance);
      }
    }
  }
  double max_state = 0.0;
  for (float v : steps_state_1thread) max_state = std::max(max_state, std::fabs(double{v}));
  MESSAGE("prefill(k) + steps / prefill(k) + prefill(T-k) vs T steps: max |state diff| ",
          worst_state, " (max |state| ", max_state, "), last logits max |diff| vs logits.f32 ",
          worst_logits);
}

TEST_CASE("mamba2: f16, bf16 and q8_0 weights stay within their measured bounds") {
  const std::optional<Fixture> f = LoadFixture("mamba2-tiny");
  if (!f) return;
  testing::TempDir dir;
  // Bounds on max |logit diff| against the f32 reference over all 100 positions (|logits| reach
  // 0.72). Only the weight matrices change dtype (in_proj, out_proj and the tied embedding/head;
  // conv, dt_bias, A_log, D and the norms stay f32). Per weight, as RMS rounding error: f16 keeps
  // 10 mantissa bits, 2^-11 / sqrt(3) ~ 2.8e-4 |w|; bf16 keeps 7, 8x that; q8_0 rounds to a step
  // of max|w| / 127 per block of 32, ~4.8e-3 of the weights' spread, about twice bf16. Every
  // matrix here has a multiple of 32 columns, so nothing falls back from q8_0. Measured, step and
  // prefill alike: f16 4.5e-4, bf16 3.8e-3 (8.4x f16, as the 3 fewer mantissa bits predict),
  // q8_0 1.09e-2 (2.9x bf16). The bounds leave about 2x.
  testing::CheckDTypeBounds(*f, dir, "mamba2", {{DType::kF16, 1e-3}, {DType::kBF16, 8e-3}, {DType::kQ8_0, 2e-2}});
}

// Rewrites the fixture into state-spaces/mamba's own layout: MambaConfig keys with ssm_cfg nested
// (layer "Mamba2"), a vocab that MambaLMHeadModel pads back to the checkpoint's 1000 rows, the
// embedding under its original name backbone.embedding.weight, and "architectures" naming the
// test's table entry (such configs name none; see IsMamba2StateSpaces).
void WriteStateSpacesCopy(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  std::ofstream(to + "/config.json") << R"({
    "d_model": 64, "d_intermediate": 0, "n_layer": 2, "vocab_size": 997,
    "pad_vocab_size_multiple": 8,
    "ssm_cfg": {"layer": "Mamba2", "d_state": 16, "d_conv": 4, "expand": 2, "headdim": 16,
                "ngroups": 1, "chunk_size": 32},
    "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": true, "residual_in_fp32": true,
    "fused_add_norm": true, "tie_embeddings": true, "architectures": ["MambaLMHeadModel"]
  })";
  testing::CopySafetensorsRenaming(from + "/model.safetensors", to + "/model.safetensors",
                                   "backbone.embeddings.weight", "backbone.embedding.weight");
}

TEST_CASE("mamba2: the state-spaces layout of the checkpoint converts to the same model") {
  const std::optional<Fixture> f = LoadFixture("mamba2-tiny");
  if (!f) return;
  testing::TempDir dir;
  const std::string ss_dir = dir.File("state-spaces");
  WriteStateSpacesCopy(f->dir, ss_dir);
  auto config = HfConfig::Load(ss_dir + "/config.json");
  REQUIRE(config.ok());
  CHECK(IsMamba2StateSpaces(*config));
  auto hf_config = HfConfig::Load(f->dir + "/config.json");
  REQUIRE(hf_config.ok());
  CHECK(!IsMamba2StateSpaces(*hf_config));
  ConvertOptions options;
  options.source = ss_dir;
  options.output = dir.File("state-spaces.recur");
  auto report = Convert(options, {{"MambaLMHeadModel", "", MapMamba2StateSpaces}});
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  CHECK(report->unused_source_tensors.empty());
  auto model = LoadModel(options.output, 1);
  CHECK(model->info().vocab_size == 1000);  // 997 padded up to a multiple of 8.
  auto session = NewSession(model);
  const std::vector<float> got = StepLogits(*session, f->tokens, f->vocab);
  CHECK(MaxAbsDiff(got.data(), f->logits_step.data(), got.size()) <= kFixtureTolerance);
}

}  // namespace
}  // namespace recur
