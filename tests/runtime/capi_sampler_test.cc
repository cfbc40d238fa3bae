// The C API's sampler (runtime/recur.h recur_sampler_*): the same draws as the C++ Sampler for the
// same params and logits; a params struct from an older, shorter header gets the defaults for
// the fields it lacks; bad calls fail by name.
#include <doctest/doctest.h>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "runtime/recur.h"
#include "runtime/recur.hpp"

namespace recur {
namespace {

const char* kModel = RECUR_TEST_DATA_DIR "/../../examples/models/kjv-mamba2.recur";

std::vector<std::vector<float>> RandomLogits(size_t rows, size_t n) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<std::vector<float>> out(rows, std::vector<float>(n));
  for (auto& row : out) {
    for (float& v : row) v = normal(rng);
  }
  return out;
}

TEST_CASE("C sampler: defaults, same draws as the C++ Sampler, short params struct, errors") {
  recur_model* model = nullptr;
  REQUIRE_MESSAGE(recur_model_load(kModel, nullptr, &model) == RECUR_OK, recur_last_error());
  const int32_t vocab = recur_model_vocab_size(model);
  REQUIRE(vocab == 256);
  auto cpp_model = Model::Load(kModel);
  REQUIRE(cpp_model.ok());
  const auto logits = RandomLogits(300, static_cast<size_t>(vocab));

  const recur_sampler_params d = recur_sampler_default_params();
  const SamplerParams cpp_defaults;
  CHECK(d.struct_size == sizeof(recur_sampler_params));
  CHECK(d.temperature == cpp_defaults.temperature);
  CHECK(d.top_p == cpp_defaults.top_p);
  CHECK(d.top_k == cpp_defaults.top_k);
  CHECK(d.seed == cpp_defaults.seed);
  CHECK(d.presence_penalty == cpp_defaults.presence_penalty);
  CHECK(d.frequency_penalty == cpp_defaults.frequency_penalty);
  CHECK(d.penalty_decay == cpp_defaults.penalty_decay);

  auto same_draws = [&](const recur_sampler_params* c_params, const SamplerParams& cpp_params) {
    recur_sampler* s = nullptr;
    REQUIRE_MESSAGE(recur_sampler_create(model, c_params, &s) == RECUR_OK, recur_last_error());
    Sampler cpp(**cpp_model, cpp_params);
    size_t differ = 0;
    std::vector<int32_t> seen;
    for (const auto& row : logits) {
      int32_t t = -1;
      REQUIRE(recur_sampler_sample(s, row.data(), &t) == RECUR_OK);
      differ += t == cpp.Sample(row.data()) ? 0 : 1;
      seen.push_back(t);
    }
    recur_sampler_free(s);
    CHECK(differ == 0);
    return seen;
  };
  SUBCASE("custom params") {
    recur_sampler_params p = d;
    p.temperature = 0.7f;
    p.top_k = 40;
    p.top_p = 0.9f;
    p.seed = 99;
    p.presence_penalty = 0.3f;
    p.frequency_penalty = 0.2f;
    p.penalty_decay = 0.95f;
    SamplerParams c;
    c.temperature = 0.7f;
    c.top_k = 40;
    c.top_p = 0.9f;
    c.seed = 99;
    c.presence_penalty = 0.3f;
    c.frequency_penalty = 0.2f;
    c.penalty_decay = 0.95f;
    const auto seen = same_draws(&p, c);
    // A different seed gives a different stream.
    p.seed = 100;
    c.seed = 100;
    CHECK(same_draws(&p, c) != seen);
  }
  SUBCASE("NULL params: the defaults") { same_draws(nullptr, cpp_defaults); }
  SUBCASE("a struct from an older header, without the penalty fields: they take the defaults") {
    recur_sampler_params p = d;
    p.struct_size = offsetof(recur_sampler_params, presence_penalty);
    p.temperature = 0.5f;
    p.presence_penalty = 123.0f;  // Past struct_size: must be ignored.
    SamplerParams c;
    c.temperature = 0.5f;
    same_draws(&p, c);
  }
  SUBCASE("errors") {
    recur_sampler* s = nullptr;
    CHECK(recur_sampler_create(nullptr, nullptr, &s) == RECUR_ERR_INVALID_ARGUMENT);
    CHECK(std::string(recur_last_error()).find("model") != std::string::npos);
    CHECK(recur_sampler_create(model, nullptr, nullptr) == RECUR_ERR_INVALID_ARGUMENT);
    recur_sampler_params bad = d;
    bad.struct_size = 0;
    CHECK(recur_sampler_create(model, &bad, &s) == RECUR_ERR_INVALID_ARGUMENT);
    CHECK(std::string(recur_last_error()).find("struct_size") != std::string::npos);
    CHECK(s == nullptr);
    REQUIRE(recur_sampler_create(model, nullptr, &s) == RECUR_OK);
    int32_t t = 7;
    CHECK(recur_sampler_sample(s, nullptr, &t) == RECUR_ERR_INVALID_ARGUMENT);
    CHECK(t == -1);
    CHECK(recur_sampler_sample(nullptr, logits[0].data(), &t) == RECUR_ERR_INVALID_ARGUMENT);
    CHECK(recur_sampler_sample(s, logits[0].data(), nullptr) == RECUR_ERR_INVALID_ARGUMENT);
    CHECK(recur_sampler_reset(s) == RECUR_OK);
    CHECK(recur_sampler_reset(nullptr) == RECUR_ERR_INVALID_ARGUMENT);
    recur_sampler_free(s);
    recur_sampler_free(nullptr);
  }
  recur_model_free(model);
}

}  // namespace
}  // namespace recur
