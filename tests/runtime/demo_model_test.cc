// The bundled demo model (examples/models/kjv-mamba2.recur, trained by
// examples/train_demo_model.py) against the logits its training code computes in float64 for
// the prompt in tests/data/kjv-mamba2.prompt.txt.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/recur.hpp"
#include "tests/runtime/fixture_util.h"

namespace recur {
namespace {

constexpr const char* kModel = RECUR_TEST_DATA_DIR "/../../examples/models/kjv-mamba2.recur";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), path << ": cannot read");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("The bundled KJV Mamba-2 reproduces its training code's logits") {
  const std::string prompt = ReadAll(RECUR_TEST_DATA_DIR "/kjv-mamba2.prompt.txt");
  const std::vector<float> expected =
      testing::ReadF32(RECUR_TEST_DATA_DIR "/kjv-mamba2.expected.f32");
  auto model = testing::LoadModel(kModel, 1);
  REQUIRE(model->has_tokenizer());
  std::vector<int32_t> ids;
  REQUIRE(model->Tokenize(prompt, &ids).ok());
  REQUIRE(ids.size() == prompt.size());  // Bytes: one token per byte.
  const size_t vocab = static_cast<size_t>(model->info().vocab_size);
  REQUIRE(expected.size() == ids.size() * vocab);

  auto session = testing::NewSession(model);
  const std::vector<float> step = testing::StepLogits(*session, ids, vocab);
  const double step_err = testing::MaxAbsDiff(step.data(), expected.data(), expected.size());
  std::vector<float> prefill(expected.size());
  session->Reset();
  REQUIRE(session->PrefillTokens(ids.data(), ids.size(), nullptr, prefill.data()).ok());
  const double prefill_err = testing::MaxAbsDiff(prefill.data(), expected.data(), expected.size());
  MESSAGE("kjv-mamba2: max |logit - reference| step " << step_err << ", prefill " << prefill_err);
  CHECK(step_err < 1e-4);
  CHECK(prefill_err < 1e-4);

  // And it has learnt the text: after "And God said, Let there be" the most likely next byte
  // is the space before "light".
  const float* last = &step[(ids.size() - 1) * vocab];
  int best = 0;
  for (size_t v = 1; v < vocab; ++v) {
    if (last[v] > last[best]) best = static_cast<int>(v);
  }
  CHECK(best == ' ');
}

}  // namespace
}  // namespace recur
