// libFuzzer target for Session::LoadState: any bytes give a restored state or a clean error that
// leaves the session as it was (checked by stepping it), never a crash.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "formats/synth.h"
#include "runtime/recur.hpp"

namespace {

std::shared_ptr<const recur::Model> g_model;
std::unique_ptr<recur::Session> g_session;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "recur-state-fuzz.recur").string();
  recur::SynthOptions options;
  options.preset = "mamba-tiny";
  options.output = path;
  if (!recur::Synthesize(options).ok()) __builtin_trap();
  auto model = recur::Model::Load(path, recur::ModelParams{.n_threads = 1});
  if (!model.ok()) __builtin_trap();
  g_model = *model;
  auto session = recur::Session::Create(g_model);
  if (!session.ok()) __builtin_trap();
  g_session = std::move(session).value();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_session->Reset();
  const float* logits = nullptr;
  if (!g_session->StepToken(7, &logits).ok()) __builtin_trap();
  const recur::Status s = g_session->LoadState(data, size);
  if (!s.ok()) {
    if (s.message().empty()) __builtin_trap();
    if (g_session->position() != 1) __builtin_trap();  // A refused load changes nothing.
  }
  if (!g_session->StepToken(3, &logits).ok()) __builtin_trap();
  return 0;
}
