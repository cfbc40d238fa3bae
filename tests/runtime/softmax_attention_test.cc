// softmax_attention: the KV-cache mode against causal masked attention computed here in double
// (MHA, GQA, MQA; RoPE none / interleaved / half), steps == one prefill == split prefills; the
// window mode == the KV cache while t <= W and == windowed masked attention after; recompute ==
// KV cache (block and a two-layer model); a full cache is refused without writing; the state in
// use grows by 2 kv_heads head_dim floats per token; and a hybrid stack (mamba1 + softmax
// attention + mlp) built from a native JSON spec runs, with prefill == steps.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "formats/native_spec.h"
#include "runtime/recur.hpp"
#include "tests/runtime/attention_test_util.h"

namespace recur {
namespace {

using testing::BlockRunner;
using testing::MaxAbs;
using testing::MaxAbsF;
using testing::MaxMag;
using testing::Vec;

constexpr int kD = 32, kHeads = 4, kHd = 8, kVocab = 13;
constexpr size_t kT = 70;  // Over one 64-key block of the online softmax.

struct Config {
  int kv_heads;
  std::string rope, mode;
  int window = 0;
  std::string Name() const {
    return "kv_heads=" + std::to_string(kv_heads) + " rope=" + rope + " mode=" + mode +
           (window ? " window=" + std::to_string(window) : "");
  }
};

std::unique_ptr<fb::LayerT> AttentionLayer(const Config& c, int64_t max_context) {
  auto layer = std::make_unique<fb::LayerT>();
  fb::SoftmaxAttentionSpecT s;
  s.n_heads = kHeads;
  s.n_kv_heads = c.kv_heads;
  s.head_dim = kHd;
  s.rope = c.rope;
  s.rope_base = 100.0f;
  s.mode = c.mode;
  s.window = c.window;
  s.max_context = max_context;
  layer->block.Set(std::move(s));
  return layer;
}

fb::ModelT AttentionModel(const Config& c, int64_t max_context, int layers = 1) {
  fb::ModelT m = testing::TokenModel(kD, kVocab);
  for (int i = 0; i < layers; ++i) m.layers.push_back(AttentionLayer(c, max_context));
  m.layers[0]->norm = fb::NormKind::None;
  return m;
}

// Causal attention of the tokens in double; each query t sees keys [max(0, t - window + 1), t]
// (window 0: all).
Vec Masked(const Config& c, testing::Weights& w, const std::vector<float>& x, size_t T,
           size_t window) {
  const size_t H = kHeads, KV = c.kv_heads, hd = kHd, group = H / KV;
  const std::string p = "layers.0.attn.";
  std::vector<Vec> q(T), k(T), v(T);
  for (size_t t = 0; t < T; ++t) {
    const Vec xt(x.begin() + t * kD, x.begin() + (t + 1) * kD);
    q[t] = testing::MatVecD(w[p + "q.weight"], xt.data(), H * hd, kD);
    k[t] = testing::MatVecD(w[p + "k.weight"], xt.data(), KV * hd, kD);
    v[t] = testing::MatVecD(w[p + "v.weight"], xt.data(), KV * hd, kD);
    if (c.rope != "none") {
      for (size_t h = 0; h < H; ++h) testing::RopeD(q[t].data() + h * hd, hd, t, 100.0, c.rope == "interleaved");
      for (size_t h = 0; h < KV; ++h) testing::RopeD(k[t].data() + h * hd, hd, t, 100.0, c.rope == "interleaved");
    }
  }
  Vec out(T * kD);
  for (size_t t = 0; t < T; ++t) {
    const size_t lo = window && t + 1 > window ? t + 1 - window : 0;
    Vec o(H * hd, 0.0);
    for (size_t h = 0; h < H; ++h) {
      const size_t g = h / group;
      Vec s(t + 1, -INFINITY);
      double mx = -INFINITY;
      for (size_t j = lo; j <= t; ++j) {
        double dot = 0.0;
        for (size_t i = 0; i < hd; ++i) dot += q[t][h * hd + i] * k[j][g * hd + i];
        s[j] = dot / std::sqrt(static_cast<double>(hd));
        mx = std::max(mx, s[j]);
      }
      double z = 0.0;
      for (size_t j = lo; j <= t; ++j) z += std::exp(s[j] - mx);
      for (size_t j = lo; j <= t; ++j) {
        const double pj = std::exp(s[j] - mx) / z;
        for (size_t i = 0; i < hd; ++i) o[h * hd + i] += pj * v[j][g * hd + i];
      }
    }
    const Vec ot = testing::MatVecD(w[p + "o.weight"], o.data(), kD, H * hd);
    std::copy(ot.begin(), ot.end(), out.begin() + t * kD);
  }
  return out;
}

// Steps, one prefill, and a prefill split 1 + 20 + rest: the three outputs.
struct Runs {
  std::vector<float> step, prefill, split, step_state, prefill_state;
};

Runs RunAll(const std::string& path, const std::vector<float>& x, size_t T, int threads_n) {
  Runs r;
  BlockRunner b(path, 0, T);
  Threads threads(threads_n);
  r.step.resize(T * kD);
  for (size_t t = 0; t < T; ++t) {
    b.block->Step(x.data() + t * kD, r.step.data() + t * kD, b.state.data(), b.scratch.data(),
                  threads);
  }
  r.step_state = b.state;
  b.Reset();
  r.prefill.resize(T * kD);
  b.block->Prefill(x.data(), T, r.prefill.data(), b.state.data(), b.scratch.data(), threads);
  r.prefill_state = b.state;
  b.Reset();
  r.split.resize(T * kD);
  size_t at = 0;
  for (size_t n : {size_t{1}, size_t{20}, T - 21}) {
    b.block->Prefill(x.data() + at * kD, n, r.split.data() + at * kD, b.state.data(),
                     b.scratch.data(), threads);
    at += n;
  }
  return r;
}

TEST_CASE("softmax_attention: kv_cache and recompute == masked attention in double; step == prefill") {
  testing::TempDir dir;
  const std::vector<float> x = testing::RandomInputs(kT * kD, 11);
  double worst = 0.0, worst_state = 0.0, worst_recompute = 0.0;
  int index = 0;
  for (int kv : {4, 2, 1}) {  // MHA, GQA, MQA.
    for (const char* rope : {"none", "interleaved", "half"}) {
      Config c{kv, rope, "kv_cache"};
      CAPTURE(c.Name());
      const uint32_t seed = 40 + index++;
      testing::Weights w;
      const std::string path = dir.File("kv" + std::to_string(index) + ".recur");
      testing::WriteRandomModel(AttentionModel(c, 100), path, &w, seed, 2.0f);
      const Vec ref = Masked(c, w, x, kT, 0);
      const double scale = std::max(1.0, MaxMag(ref));
      for (int n_threads : {1, 2}) {
        const Runs r = RunAll(path, x, kT, n_threads);
        const double e = std::max({MaxAbs(r.step.data(), ref.data(), ref.size()),
                                   MaxAbs(r.prefill.data(), ref.data(), ref.size()),
                                   MaxAbs(r.split.data(), ref.data(), ref.size())}) / scale;
        worst = std::max(worst, e);
        CHECK(e < 1e-5);
        const double sd = MaxAbsF(r.step_state.data(), r.prefill_state.data(), r.step_state.size());
        worst_state = std::max(worst_state, sd);
        CHECK(sd < 1e-5);
      }
      // Recompute: the same weights keep only the inputs.
      Config rc = c;
      rc.mode = "recompute";
      testing::Weights w2;
      const std::string rpath = dir.File("rc" + std::to_string(index) + ".recur");
      testing::WriteRandomModel(AttentionModel(rc, 100), rpath, &w2, seed, 2.0f);
      const Runs rr = RunAll(rpath, x, kT, 2);
      const double er = std::max({MaxAbs(rr.step.data(), ref.data(), ref.size()),
                                  MaxAbs(rr.prefill.data(), ref.data(), ref.size()),
                                  MaxAbs(rr.split.data(), ref.data(), ref.size())}) / scale;
      worst_recompute = std::max(worst_recompute, er);
      CHECK(er < 1e-5);
    }
  }
  MESSAGE("softmax_attention kv_cache: max |out - masked(double)| / max(1, |ref|) ", worst,
          "; step vs prefill state ", worst_state, "; recompute vs masked(double) ",
          worst_recompute);
}

TEST_CASE("softmax_attention: window == kv_cache while t <= W, == windowed attention after") {
  testing::TempDir dir;
  const std::vector<float> x = testing::RandomInputs(kT * kD, 12);
  double worst = 0.0, worst_prefix = 0.0;
  int index = 0;
  for (int kv : {4, 2, 1}) {
    for (const char* rope : {"none", "half"}) {
      for (int window : {1, 8, 64}) {
        Config c{kv, rope, "window", window};
        CAPTURE(c.Name());
        const uint32_t seed = 70 + index++;
        testing::Weights w;
        const std::string path = dir.File("w" + std::to_string(index) + ".recur");
        testing::WriteRandomModel(AttentionModel(c, 0), path, &w, seed, 2.0f);
        const Vec ref = Masked(c, w, x, kT, static_cast<size_t>(window));
        const Vec full = Masked(c, w, x, kT, 0);
        const double scale = std::max(1.0, MaxMag(ref));
        const Runs r = RunAll(path, x, kT, 2);
        const double e = std::max({MaxAbs(r.step.data(), ref.data(), ref.size()),
                                   MaxAbs(r.prefill.data(), ref.data(), ref.size()),
                                   MaxAbs(r.split.data(), ref.data(), ref.size())}) / scale;
        worst = std::max(worst, e);
        CHECK(e < 1e-5);
        // The first W outputs are the full cache's.
        const size_t prefix = static_cast<size_t>(window) * kD;
        const double ep = MaxAbs(r.step.data(), full.data(), prefix) / scale;
        worst_prefix = std::max(worst_prefix, ep);
        CHECK(ep < 1e-5);
        CHECK(MaxAbsF(r.step_state.data(), r.prefill_state.data(), r.step_state.size()) < 1e-5);
      }
    }
  }
  MESSAGE("softmax_attention window: max |out - windowed masked(double)| / max(1, |ref|) ", worst,
          "; first W outputs vs full attention ", worst_prefix);
}

TEST_CASE("softmax_attention: two-layer model, recompute logits == kv_cache logits; full cache refused") {
  testing::TempDir dir;
  const std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4};
  std::vector<std::vector<float>> logits_by_mode;
  for (const char* mode : {"kv_cache", "recompute"}) {
    CAPTURE(std::string(mode));
    Config c{2, "half", mode};
    fb::ModelT m = AttentionModel(c, 24, /*layers=*/2);
    m.layers[0]->norm = fb::NormKind::RMSNorm;
    const std::string path = dir.File(std::string(mode) + ".recur");
    testing::Weights w;
    testing::WriteRandomModel(std::move(m), path, &w, 9, 2.0f);
    auto model = Model::Load(path, ModelParams{.n_threads = 2});
    REQUIRE_MESSAGE(model.ok(), model.status().ToString());
    REQUIRE((*model)->runnable().ok());
    auto session = Session::Create(*model);
    REQUIRE(session.ok());
    Session& s = **session;
    const size_t row_bytes = std::string(mode) == "kv_cache" ? 2 * 2 * kHd * 4 : kD * 4;
    for (const LayerInfo& li : (*model)->info().layers) {
      CHECK(li.state_grows);
      CHECK(li.bytes_per_token == row_bytes);
      CHECK(li.state_bytes == (16 + 24 * row_bytes / 4) * 4);
    }
    CHECK(s.state_bytes_in_use() == 2 * 64);
    std::vector<float> step(tokens.size() * kVocab);
    for (size_t i = 0; i < tokens.size(); ++i) {
      const float* logits = nullptr;
      REQUIRE(s.StepToken(tokens[i], &logits).ok());
      std::memcpy(step.data() + i * kVocab, logits, kVocab * sizeof(float));
      CHECK(s.state_bytes_in_use() == 2 * (64 + (i + 1) * row_bytes));
    }
    s.Reset();
    CHECK(s.state_bytes_in_use() == 2 * 64);
    std::vector<float> all(tokens.size() * kVocab);
    REQUIRE(s.PrefillTokens(tokens.data(), tokens.size(), nullptr, all.data()).ok());
    CHECK(MaxAbsF(all.data(), step.data(), all.size()) < 1e-4);
    logits_by_mode.push_back(step);

    // 20 of max_context 24 used: 5 more do not fit, and nothing moves; 4 do, then one more not.
    const float* logits = nullptr;
    const std::vector<float> before(s.state(), s.state() + s.state_bytes() / 4);
    const Status refused = s.PrefillTokens(tokens.data(), 5, &logits);
    CHECK(!refused.ok());
    CHECK(testing::Contains(refused.message(), "room for 4 more"));
    CHECK(s.position() == 20);
    CHECK(std::memcmp(before.data(), s.state(), before.size() * 4) == 0);
    REQUIRE(s.PrefillTokens(tokens.data(), 4, &logits).ok());
    const Status full = s.StepToken(1, &logits);
    CHECK(!full.ok());
    CHECK(testing::Contains(full.message(), "max_context"));
    CHECK(s.position() == 24);
    s.Reset();
    CHECK(s.StepToken(1, &logits).ok());
    // Batched decoding: two streams step together as they do alone; a full stream is refused
    // by index and no stream moves.
    auto other = Session::Create(*model);
    REQUIRE(other.ok());
    s.Reset();
    Session* streams[2] = {&s, other->get()};
    const int32_t pair[2] = {4, 7};
    const float* batch_logits[2] = {};
    REQUIRE(Session::StepBatch(streams, pair, 2, batch_logits).ok());
    std::vector<float> first(batch_logits[1], batch_logits[1] + kVocab);
    auto alone = Session::Create(*model);
    REQUIRE(alone.ok());
    REQUIRE((*alone)->StepToken(7, &logits).ok());
    CHECK(MaxAbsF(first.data(), logits, kVocab) < 1e-5);
    REQUIRE((*other)->PrefillTokens(tokens.data(), 20, nullptr).ok());
    REQUIRE((*other)->PrefillTokens(tokens.data(), 3, nullptr).ok());
    const Status batch_full = Session::StepBatch(streams, pair, 2, batch_logits);
    CHECK(!batch_full.ok());
    CHECK(testing::Contains(batch_full.message(), "stream 1"));
    CHECK(s.position() == 1);
    CHECK((*other)->position() == 24);
  }
  const double d = MaxAbsF(logits_by_mode[0].data(), logits_by_mode[1].data(), logits_by_mode[0].size());
  MESSAGE("two-layer model: recompute vs kv_cache logits max |diff| ", d);
  CHECK(d < 1e-4);
}

TEST_CASE("softmax_attention: kv_cache without max_context is refused by name") {
  Config c{4, "none", "kv_cache"};
  fb::ModelT m = AttentionModel(c, 0);
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::Model::Pack(fbb, &m));
  auto r = ExpectedTensors(*flatbuffers::GetRoot<fb::Model>(fbb.GetBufferPointer()));
  REQUIRE(!r.ok());
  CHECK(testing::Contains(r.status().message(), "max_context"));
  fb::ModelT m2 = AttentionModel(Config{3, "none", "kv_cache"}, 10);
  flatbuffers::FlatBufferBuilder fbb2;
  fbb2.Finish(fb::Model::Pack(fbb2, &m2));
  r = ExpectedTensors(*flatbuffers::GetRoot<fb::Model>(fbb2.GetBufferPointer()));
  REQUIRE(!r.ok());
  CHECK(testing::Contains(r.status().message(), "n_kv_heads"));
  fb::ModelT m3 = AttentionModel(Config{4, "none", "kv_cache"}, int64_t{1} << 60);
  flatbuffers::FlatBufferBuilder fbb3;
  fbb3.Finish(fb::Model::Pack(fbb3, &m3));
  r = ExpectedTensors(*flatbuffers::GetRoot<fb::Model>(fbb3.GetBufferPointer()));
  REQUIRE(!r.ok());
  CHECK(testing::Contains(r.status().message(), "beyond 1 PiB"));
}

TEST_CASE("hybrid stack from a native spec: mamba1 + softmax_attention + mlp runs, prefill == steps") {
  testing::TempDir dir;
  const std::string spec_text = R"({
    "format": "recur-spec", "architecture": "hybrid", "d_model": 32,
    "input": {"kind": "tokens", "vocab_size": 13}, "tie_embeddings": true,
    "layers": [
      {"kind": "mamba1", "d_inner": 64, "d_state": 8, "d_conv": 4, "dt_rank": 2},
      {"kind": "softmax_attention", "n_heads": 4, "n_kv_heads": 2, "head_dim": 8,
       "rope": "half", "max_context": 64},
      {"kind": "mlp", "d_ff": 48, "activation": "gelu"},
      {"kind": "linear_attention", "n_heads": 2, "head_dim": 16, "feature_map": "elu1",
       "normalise": true, "decay": "gate", "gate_rank": 4, "output_gate": true,
       "head_norm": true, "chunk_size": 8}
    ]
  })";
  auto spec = ParseNativeSpec(spec_text, dir.File("spec.json"));
  REQUIRE_MESSAGE(spec.ok(), spec.status().ToString());
  const std::string path = dir.File("hybrid.recur");
  testing::Weights w;
  fb::ModelT m = std::move(spec->model);
  testing::WriteRandomModel(std::move(m), path, &w, 21);
  auto model = Model::Load(path, ModelParams{.n_threads = 2});
  REQUIRE_MESSAGE(model.ok(), model.status().ToString());
  REQUIRE_MESSAGE((*model)->runnable().ok(), (*model)->runnable().ToString());
  CHECK((*model)->info().layers.size() == 4);
  CHECK((*model)->info().layers[1].kind == "softmax_attention");
  auto session = Session::Create(*model);
  REQUIRE(session.ok());
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 2, 3, 4, 5};
  std::vector<float> step(tokens.size() * kVocab);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const float* logits = nullptr;
    REQUIRE((*session)->StepToken(tokens[i], &logits).ok());
    std::memcpy(step.data() + i * kVocab, logits, kVocab * sizeof(float));
  }
  bool finite = true;
  for (float v : step) finite = finite && std::isfinite(v);
  CHECK(finite);
  (*session)->Reset();
  std::vector<float> all(tokens.size() * kVocab);
  REQUIRE((*session)->PrefillTokens(tokens.data(), tokens.size(), nullptr, all.data()).ok());
  const double d = MaxAbsF(all.data(), step.data(), all.size());
  MESSAGE("hybrid mamba1 + softmax_attention + mlp + linear_attention: prefill vs step logits ", d);
  CHECK(d < 1e-4);
}

}  // namespace
}  // namespace recur
