// Mamba-1 end to end against the official reference: the shared fixture mamba1-tiny (a
// MambaForCausalLM checkpoint with the logits state-spaces/mamba computes for it) converted to
// .recur and run token by token and as a prefill; prefill and steps leave the same state; other
// weight dtypes stay within measured bounds; the state-spaces layout of the same checkpoint gives
// the same model.
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
#include "formats/hf_mamba.h"
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


TEST_CASE("mamba1: converted mamba1-tiny matches the official reference, step by step") {
  const std::optional<Fixture> f = LoadFixture("mamba1-tiny");
  if (!f) return;
  testing::TempDir dir;
  const std::string path = ConvertTo(f->dir, dir, DType::kF32, "mamba1");
  for (int n_threads : {1, 2}) {
    CAPTURE(n_threads);
    auto model = LoadModel(path, n_threads);
    CHECK(model->info().architecture == "mamba1");
    REQUIRE(model->info().layers.size() == 2);
    CHECK(model->info().layers[0].kind == "mamba1");
    CHECK(model->info().layers[0].runnable);
    // d_inner (d_state + d_conv - 1) floats per layer.
    CHECK(model->info().layers[0].state_bytes == 128 * (16 + 3) * sizeof(float));
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

TEST_CASE("mamba1: a prefill of every token matches the official reference at every position") {
  const std::optional<Fixture> f = LoadFixture("mamba1-tiny");
  if (!f) return;
  testing::TempDir dir;
  const std::string path = ConvertTo(f->dir, dir, DType::kF32, "mamba1");
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
  }
}

TEST_CASE("mamba1: prefill(k) then steps leaves the state of T steps; split prefills are exact") {
  const std::optional<Fixture> f = LoadFixture("mamba1-tiny");
  if (!f) return;
  testing::TempDir dir;
  const std::string path = ConvertTo(f->dir, dir, DType::kF32, "mamba1");
  const std::vector<int32_t>& tokens = f->tokens;
  const size_t T = tokens.size();
  std::vector<float> steps_state_1thread, prefill_state_1thread;
  for (int n_threads : {1, 2}) {
    CAPTURE(n_threads);
    auto model = LoadModel(path, n_threads);
    auto session = NewSession(model);
    StepLogits(*session, tokens, f->vocab);
    const std::vector<float> steps_state = StateOf(*session);

    session->Reset();
    REQUIRE(session->PrefillTokens(tokens.data(), T, nullptr).ok());
    const std::vector<float> prefill_state = StateOf(*session);
    // Prefill's projections are matmuls and a step's are matvecs: the same sums in a different
    // order, so the two states differ by float rounding only (the conv and the scan are bit-exact
    // between their forms). Measured ~1e-7 of states of magnitude ~1.
    const double prefill_vs_steps =
        MaxAbsDiff(prefill_state.data(), steps_state.data(), steps_state.size());
    MESSAGE(n_threads, " thread(s): state after prefill(T) vs after T steps: max |diff| ",
            prefill_vs_steps);
    CHECK(prefill_vs_steps <= 1e-5);

    for (size_t k : {size_t{1}, size_t{3}, size_t{17}, size_t{51}, T - 1}) {
      CAPTURE(k);
      // prefill(k) then single steps: the state of T steps, and the reference's last logits.
      session->Reset();
      REQUIRE(session->PrefillTokens(tokens.data(), k, nullptr).ok());
      const float* logits = nullptr;
      for (size_t t = k; t < T; ++t) REQUIRE(session->StepToken(tokens[t], &logits).ok());
      CHECK(MaxAbsDiff(StateOf(*session).data(), steps_state.data(), steps_state.size()) <= 1e-5);
      CHECK(MaxAbsDiff(logits, f->logits.data() + (T - 1) * f->vocab, f->vocab) <=
            kFixtureTolerance);
      // prefill(k) then prefill(T - k): exactly the state of one prefill(T) when both chunks
      // hold at least two tokens, since each token's matmul row, the conv and the scan do not
      // depend on where a chunk starts. MatMul runs a one-token chunk as a matvec (a different
      // summation order), so a split that leaves a single token gets the step tolerance.
      session->Reset();
      REQUIRE(session->PrefillTokens(tokens.data(), k, nullptr).ok());
      REQUIRE(session->PrefillTokens(tokens.data() + k, T - k, nullptr).ok());
      const std::vector<float> split_state = StateOf(*session);
      if (k >= 2 && T - k >= 2) {
        CHECK(std::memcmp(split_state.data(), prefill_state.data(),
                          prefill_state.size() * sizeof(float)) == 0);
      } else {
        CHECK(MaxAbsDiff(split_state.data(), prefill_state.data(), prefill_state.size()) <= 1e-5);
      }
    }
    // Threads split rows and channels, never a sum: the result does not depend on their number.
    if (n_threads == 1) {
      steps_state_1thread = steps_state;
      prefill_state_1thread = prefill_state;
    } else {
      CHECK(std::memcmp(steps_state.data(), steps_state_1thread.data(),
                        steps_state.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(prefill_state.data(), prefill_state_1thread.data(),
                        prefill_state.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("mamba1: f16, bf16 and q8_0 weights stay within their measured bounds") {
  const std::optional<Fixture> f = LoadFixture("mamba1-tiny");
  if (!f) return;
  testing::TempDir dir;
  // Bounds on max |logit diff| against the f32 reference over all 96 positions (logits reach ~1).
  // What each dtype does to one weight w (these are Gaussian-initialised, spread sigma), as RMS
  // rounding error: f16 keeps 10 mantissa bits, 2^-11 / sqrt(3) ~ 2.8e-4 |w|; bf16 keeps 7, 8x
  // that, ~2.3e-3 |w|; q8_0 rounds to a step of max|w| / 127 over a block of 32 (max ~2.1 sigma),
  // step / sqrt(12) ~ 4.8e-3 sigma, about twice bf16's. The logits carry these through two layers
  // and a tied head whose embedding is rounded too (dt_proj, 4 columns wide, not a multiple of
  // 32, falls back from q8_0 to f16). Measured on this fixture, step and prefill alike: f16
  // 4.1e-4, bf16 3.3e-3 (8x f16, as the mantissas predict), q8_0 8.6e-3. The bounds leave 2-3x.
  testing::CheckDTypeBounds(*f, dir, "mamba1", {{DType::kF16, 1e-3}, {DType::kBF16, 1e-2}, {DType::kQ8_0, 2e-2}});
}

// Rewrites the fixture into state-spaces/mamba's own layout: MambaConfig keys (with ssm_cfg
// nested and a vocab that MambaLMHeadModel pads back to the checkpoint's 1000 rows) and the
// embedding under its original name, backbone.embedding.weight.
void WriteStateSpacesCopy(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  std::ofstream(to + "/config.json") << R"({
    "d_model": 64, "n_layer": 2, "vocab_size": 995, "pad_vocab_size_multiple": 8,
    "ssm_cfg": {"d_state": 16, "d_conv": 4, "expand": 2, "dt_rank": "auto"},
    "rms_norm": true, "residual_in_fp32": true, "fused_add_norm": true, "tie_embeddings": true
  })";
  testing::CopySafetensorsRenaming(from + "/model.safetensors", to + "/model.safetensors",
                                   "backbone.embeddings.weight", "backbone.embedding.weight");
}

TEST_CASE("mamba1: the state-spaces layout of the checkpoint converts to the same model") {
  const std::optional<Fixture> f = LoadFixture("mamba1-tiny");
  if (!f) return;
  testing::TempDir dir;
  const std::string ss_dir = dir.File("state-spaces");
  WriteStateSpacesCopy(f->dir, ss_dir);
  auto config = HfConfig::Load(ss_dir + "/config.json");
  REQUIRE(config.ok());
  CHECK(IsStateSpacesMambaConfig(*config));
  auto hf_config = HfConfig::Load(f->dir + "/config.json");
  REQUIRE(hf_config.ok());
  CHECK(!IsStateSpacesMambaConfig(*hf_config));
  // The converter picks an entry by "architectures", which state-spaces configs lack (see
  // IsStateSpacesMambaConfig), so the copy names the entry's key explicitly.
  {
    nlohmann::json config_json = nlohmann::json::parse(std::ifstream(ss_dir + "/config.json"));
    config_json["architectures"] = {"MambaLMHeadModel"};
    std::ofstream(ss_dir + "/config.json") << config_json.dump();
  }
  ConvertOptions options;
  options.source = ss_dir;
  options.output = dir.File("state-spaces.recur");
  auto report = Convert(options, MambaHfArchitectures());
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  CHECK(report->unused_source_tensors.empty());
  auto model = LoadModel(options.output, 1);
  CHECK(model->info().vocab_size == 1000);  // 995 padded up to a multiple of 8.
  auto session = NewSession(model);
  const std::vector<float> got = StepLogits(*session, f->tokens, f->vocab);
  CHECK(MaxAbsDiff(got.data(), f->logits_step.data(), got.size()) <= kFixtureTolerance);
}

}  // namespace
}  // namespace recur
