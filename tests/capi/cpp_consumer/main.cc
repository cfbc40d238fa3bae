// The installed C++ API (recur.hpp): load, step, save, load into a fork-free fresh session,
// compare; and the C API from C++.
#include <cstdio>
#include <cstring>
#include <vector>

#include <recur.hpp>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto model = recur::Model::Load(argv[1], recur::ModelParams{.n_threads = 1});
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  auto a = recur::Session::Create(*model);
  auto b = recur::Session::Create(*model);
  if (!a.ok() || !b.ok()) return 1;
  std::vector<int32_t> ids;
  if (!(*model)->Tokenize("installed", &ids).ok()) return 1;
  const float* logits = nullptr;
  if (!(*a)->PrefillTokens(ids.data(), ids.size(), &logits).ok()) return 1;
  std::vector<uint8_t> state((*a)->saved_state_size());
  if (!(*a)->SaveState(state.data(), state.size()).ok()) return 1;
  if (!(*b)->LoadState(state.data(), state.size()).ok()) return 1;
  const float *la = nullptr, *lb = nullptr;
  if (!(*a)->StepToken(7, &la).ok() || !(*b)->StepToken(7, &lb).ok()) return 1;
  const size_t vocab = static_cast<size_t>((*model)->info().vocab_size);
  if (std::memcmp(la, lb, vocab * sizeof(float)) != 0) {
    std::fprintf(stderr, "loaded state diverged\n");
    return 1;
  }
  // A bad call gives an error, not a crash.
  if ((*a)->StepToken(-1, &la).ok()) return 1;
  std::printf("cpp consumer: ok (recur %s, %zu state bytes)\n", recur_version(), state.size());
  return 0;
}
