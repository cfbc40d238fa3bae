// Shared plumbing for the tests that run a model from ../shared/fixtures against the logits
// the official reference code computed for it.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <optional>
#include <string>
#include <vector>

#include "formats/convert.h"
#include "runtime/recur.hpp"
#include "tests/test_util.h"

namespace recur::testing {

// The fixtures README: a float32 runtime must match the reference within 1e-4; looser is not a
// pass (dropping the SSM recurrence altogether moves these logits by only ~1e-2).
constexpr double kFixtureTolerance = 1e-4;

struct Fixture {
  std::string dir;
  std::vector<int32_t> tokens;
  std::vector<float> logits;       // [T, V] from the full-sequence forward.
  std::vector<float> logits_step;  // [T, V] from the reference's step, one token at a time.
  size_t vocab = 0;
};

inline std::vector<float> ReadF32(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  REQUIRE_MESSAGE(in.good(), (std::string("cannot open ") + path));
  const std::streamsize bytes = in.tellg();
  in.seekg(0);
  std::vector<float> v(static_cast<size_t>(bytes) / sizeof(float));
  in.read(reinterpret_cast<char*>(v.data()),
          static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

// Fixture `name` (e.g. "mamba1-tiny"), or nullopt (with a message) when the shared folder is
// absent.
inline std::optional<Fixture> LoadFixture(const std::string& name) {
  const std::string shared = SharedDir();
  if (shared.empty()) {
    MESSAGE("skipped: the shared fixtures folder is absent");
    return std::nullopt;
  }
  Fixture f;
  f.dir = shared + "/fixtures/" + name;
  std::ifstream tokens(f.dir + "/tokens.txt");
  REQUIRE(tokens.good());
  std::string item;
  while (std::getline(tokens, item, ',')) f.tokens.push_back(std::stoi(item));
  f.logits = ReadF32(f.dir + "/logits.f32");
  f.logits_step = ReadF32(f.dir + "/logits_step.f32");
  REQUIRE(!f.tokens.empty());
  f.vocab = f.logits.size() / f.tokens.size();
  REQUIRE(f.logits.size() == f.tokens.size() * f.vocab);
  REQUIRE(f.logits_step.size() == f.logits.size());
  return f;
}

// Converts `source` into `dir` with weight matrices in `dtype`; checks the architecture found
// and that every source tensor was used. Returns the .recur path.
inline std::string ConvertTo(const std::string& source, const TempDir& dir, DType dtype,
                             const std::string& architecture) {
  ConvertOptions options;
  options.source = source;
  options.output = dir.File(architecture + "-" + std::string(DTypeName(dtype)) + ".recur");
  options.dtype = dtype;
  auto report = Convert(options);
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  CHECK(report->architecture == architecture);
  CHECK(report->unused_source_tensors.empty());
  return options.output;
}

inline std::shared_ptr<const Model> LoadModel(const std::string& path, int n_threads) {
  auto model = Model::Load(path, ModelParams{.n_threads = n_threads});
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  REQUIRE_MESSAGE((*model)->runnable().ok(), (*model)->runnable().message());
  return *model;
}

inline std::unique_ptr<Session> NewSession(const std::shared_ptr<const Model>& model) {
  auto session = Session::Create(model);
  REQUIRE_MESSAGE(session.ok(), session.status().message());
  return std::move(session).value();
}

inline double MaxAbsDiff(const float* a, const float* b, size_t n) {
  double worst = 0.0;
  for (size_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
  return worst;
}

// Every position's logits, one token at a time.
inline std::vector<float> StepLogits(Session& session, const std::vector<int32_t>& tokens, size_t vocab) {
  std::vector<float> all(tokens.size() * vocab);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const float* logits = nullptr;
    REQUIRE(session.StepToken(tokens[t], &logits).ok());
    std::memcpy(all.data() + t * vocab, logits, vocab * sizeof(float));
  }
  return all;
}

inline std::vector<float> StateOf(const Session& session) {
  return std::vector<float>(session.state(),
                            session.state() + session.state_bytes() / sizeof(float));
}

// Frame models: save the state after some frames, load it into a fresh session and continue:
// outputs bit-identical to the uninterrupted stream; a fork continues the same way.
inline void CheckFrameStateRoundTrip(const std::shared_ptr<const Model>& model) {
  const size_t in = static_cast<size_t>(model->input_size());
  const size_t out = static_cast<size_t>(model->output_size());
  std::vector<float> frames(40 * in);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = std::sin(0.37f * static_cast<float>(i));
  auto run = [&](Session& s, size_t from, size_t to) {
    std::vector<float> outputs;
    for (size_t t = from; t < to; ++t) {
      const float* y = nullptr;
      REQUIRE(s.StepFrame(&frames[t * in], &y).ok());
      outputs.insert(outputs.end(), y, y + out);
    }
    return outputs;
  };
  auto full = NewSession(model);
  run(*full, 0, 25);
  const std::vector<float> expected = run(*full, 25, 40);
  auto saver = NewSession(model);
  run(*saver, 0, 25);
  std::vector<unsigned char> bytes(saver->saved_state_size());
  REQUIRE(saver->SaveState(bytes.data(), bytes.size()).ok());
  auto loaded = NewSession(model);
  run(*loaded, 0, 3);
  REQUIRE(loaded->LoadState(bytes.data(), bytes.size()).ok());
  CHECK(run(*loaded, 25, 40) == expected);
  auto forked = saver->Fork();
  REQUIRE(forked.ok());
  CHECK(run(**forked, 25, 40) == expected);
  CHECK(run(*saver, 25, 40) == expected);
}

// One weight dtype and the bound on max |logit diff| it is allowed against the f32 reference.
struct DTypeBound {
  DType dtype;
  double bound;
};

// Converts the fixture with each dtype and checks step and prefill logits against logits.f32
// within the case's bound, and against each other within f32 rounding (they read the same
// rounded weights). q8_0 products round their input vector to int16 per 32-block (ops/matvec.h),
// where an input that step and prefill compute one ulp apart can land on either side of a
// rounding step: 2^-16 of the block's largest entry instead of 2^-24. Measured 2.8e-5 on these
// fixtures; the bound for q8_0 is 1e-4, still 100x below its error against f32.
inline void CheckDTypeBounds(const Fixture& f, const TempDir& dir, const std::string& architecture,
                             std::initializer_list<DTypeBound> cases) {
  for (const DTypeBound& c : cases) {
    CAPTURE(DTypeName(c.dtype));
    const std::string path = ConvertTo(f.dir, dir, c.dtype, architecture);
    auto model = LoadModel(path, 2);
    auto session = NewSession(model);
    const std::vector<float> step = StepLogits(*session, f.tokens, f.vocab);
    session->Reset();
    std::vector<float> prefill(step.size());
    REQUIRE(session->PrefillTokens(f.tokens.data(), f.tokens.size(), nullptr, prefill.data()).ok());
    const double step_diff = MaxAbsDiff(step.data(), f.logits.data(), step.size());
    const double prefill_diff = MaxAbsDiff(prefill.data(), f.logits.data(), prefill.size());
    MESSAGE(DTypeName(c.dtype), ": max |diff| vs logits.f32: step ", step_diff, ", prefill ",
            prefill_diff, " (bound ", c.bound, ")");
    CHECK(step_diff <= c.bound);
    CHECK(prefill_diff <= c.bound);
    const double agreement = c.dtype == DType::kQ8_0 ? 1e-4 : 1e-5;
    CHECK(MaxAbsDiff(step.data(), prefill.data(), step.size()) <= agreement);
  }
}

// Copies the fixture's model.safetensors to `to` with the tensor `from_name` renamed `to_name`
// (the data bytes unchanged), as another checkpoint layout would name it.
inline void CopySafetensorsRenaming(const std::string& from, const std::string& to,
                                    const std::string& from_name, const std::string& to_name) {
  std::ifstream in(from, std::ios::binary);
  REQUIRE(in.good());
  uint64_t header_bytes = 0;
  in.read(reinterpret_cast<char*>(&header_bytes), sizeof(header_bytes));
  std::string header(header_bytes, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_bytes));
  std::stringstream data;
  data << in.rdbuf();
  nlohmann::json h = nlohmann::json::parse(header);
  h[to_name] = h[from_name];
  h.erase(from_name);
  std::string new_header = h.dump();
  new_header.resize((new_header.size() + 7) / 8 * 8, ' ');  // Keep the data 8-byte aligned.
  const uint64_t new_bytes = new_header.size();
  std::ofstream out(to, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&new_bytes), sizeof(new_bytes));
  out << new_header << data.str();
  REQUIRE(out.good());
}

}  // namespace recur::testing
