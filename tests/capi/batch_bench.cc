// capi_batch_bench [MODEL.recur] [--threads N] [--iters K] [--max-streams N]
// Tokens/s of recur_step_batch over n streams against n separate recur_session_step_token calls,
// for n = 1, 2, 4, 8, 16, 32. Without a model path, writes a random-weight model of Mamba-130m's
// shape (24 mamba1 layers, d_model 768, d_inner 1536, d_state 16, dt_rank 48, vocab 50280, tied
// embeddings, f32) to /tmp/recur-bench-mamba130m.recur once and uses it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "formats/recur_writer.h"
#include "runtime/recur.h"

namespace {

bool WriteMamba130m(const std::string& path) {
  constexpr int kDModel = 768, kLayers = 24, kInner = 1536, kState = 16, kConv = 4, kRank = 48,
                kVocab = 50280;
  recur::fb::ModelT m;
  m.architecture = "mamba1";
  m.d_model = kDModel;
  m.vocab_size = kVocab;
  m.output_size = kVocab;
  m.tie_embeddings = true;
  for (int i = 0; i < kLayers; ++i) {
    auto layer = std::make_unique<recur::fb::LayerT>();
    recur::fb::Mamba1SpecT s;
    s.d_inner = kInner;
    s.d_state = kState;
    s.d_conv = kConv;
    s.dt_rank = kRank;
    layer->block.Set(std::move(s));
    layer->norm = recur::fb::NormKind::RMSNorm;
    m.layers.push_back(std::move(layer));
  }
  recur::RecurWriter writer(std::move(m));
  std::vector<std::vector<float>> storage;
  uint32_t x = 12345;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float offset) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    storage.emplace_back(n);
    for (float& v : storage.back()) {
      x = x * 1664525u + 1013904223u;
      v = offset + scale * (static_cast<float>(x >> 8) / 16777216.0f - 0.5f);
    }
    return writer.AddTensorFromMemory(name, recur::DType::kF32, shape, storage.back().data()).ok();
  };
  bool ok = add("embed.weight", {kVocab, kDModel}, 0.1f, 0) &&
            add("norm_f.weight", {kDModel}, 0.0f, 1.0f);
  for (int i = 0; i < kLayers && ok; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    ok = add(p + "norm.weight", {kDModel}, 0.0f, 1.0f) &&
         add(p + "mixer.in_proj.weight", {2 * kInner, kDModel}, 0.05f, 0) &&
         add(p + "mixer.conv1d.weight", {kInner, kConv}, 0.5f, 0) &&
         add(p + "mixer.conv1d.bias", {kInner}, 0.1f, 0) &&
         add(p + "mixer.x_proj.weight", {kRank + 2 * kState, kInner}, 0.05f, 0) &&
         add(p + "mixer.dt_proj.weight", {kInner, kRank}, 0.1f, 0) &&
         add(p + "mixer.dt_proj.bias", {kInner}, 1.0f, -4.0f) &&
         add(p + "mixer.A_log", {kInner, kState}, 1.0f, 1.0f) &&
         add(p + "mixer.D", {kInner}, 0.0f, 1.0f) &&
         add(p + "mixer.out_proj.weight", {kDModel, kInner}, 0.05f, 0);
  }
  return ok && writer.Write(path).ok();
}

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  int threads = 1, iters = 4;
  size_t max_streams = 32;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--iters" && i + 1 < argc) {
      iters = std::atoi(argv[++i]);
    } else if (a == "--max-streams" && i + 1 < argc) {
      max_streams = static_cast<size_t>(std::atoll(argv[++i]));
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [MODEL.recur] [--threads N] [--iters K] [--max-streams N]\n", argv[0]);
      return 0;
    } else {
      path = a;
    }
  }
  if (path.empty()) {
    path = "/tmp/recur-bench-mamba130m.recur";
    if (!std::filesystem::exists(path)) {
      std::printf("writing %s ...\n", path.c_str());
      if (!WriteMamba130m(path)) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        return 1;
      }
    }
  }
  recur_model_params params = recur_model_default_params();
  params.n_threads = threads;
  recur_model* model = nullptr;
  if (recur_model_load(path.c_str(), &params, &model) != RECUR_OK) {
    std::fprintf(stderr, "%s\n", recur_last_error());
    return 1;
  }
  const int32_t vocab = recur_model_vocab_size(model);
  std::printf("model %s, %d thread(s), best of %d interleaved rounds per point\n", path.c_str(),
              threads, iters);
  std::printf("%8s %14s %14s %8s\n", "streams", "separate tok/s", "batch tok/s", "speedup");
  for (size_t n = 1; n <= max_streams; n *= 2) {
    std::vector<recur_session*> s(n, nullptr);
    for (recur_session*& x : s) recur_session_create(model, &x);
    recur_session_reserve_batch(s[0], n);
    std::vector<int32_t> tokens(n);
    std::vector<const float*> logits(n);
    auto fill = [&](int step) {
      for (size_t i = 0; i < n; ++i) tokens[i] = static_cast<int32_t>((i * 997 + step * 31) % vocab);
    };
    // Warm-up (first calls size kernel scratch and fault in the weights).
    fill(0);
    recur_step_batch(s.data(), tokens.data(), n, logits.data());
    for (size_t i = 0; i < n; ++i) recur_session_step_token(s[i], tokens[i], &logits[i]);

    // Interleaved rounds, each timing one step of all n streams both ways; the fastest round of
    // each is reported, which keeps other load on the machine out of the ratio.
    double best_sep = 1e30, best_bat = 1e30;
    for (int k = 0; k < iters; ++k) {
      fill(k + 1);
      auto t0 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < n; ++i) recur_session_step_token(s[i], tokens[i], &logits[i]);
      auto t1 = std::chrono::steady_clock::now();
      if (recur_step_batch(s.data(), tokens.data(), n, logits.data()) != RECUR_OK) {
        std::fprintf(stderr, "%s\n", recur_last_error());
        return 1;
      }
      auto t2 = std::chrono::steady_clock::now();
      best_sep = std::min(best_sep, Seconds(t0, t1));
      best_bat = std::min(best_bat, Seconds(t1, t2));
    }
    const double sep = n / best_sep, bat = n / best_bat;
    std::printf("%8zu %14.1f %14.1f %7.2fx\n", n, sep, bat, bat / sep);
    std::fflush(stdout);
    for (recur_session* x : s) recur_session_free(x);
  }
  recur_model_free(model);
  return 0;
}
