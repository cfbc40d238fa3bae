// linear_attention: for every feature map, decay kind (none, RetNet's fixed, GLA's gate at full
// and low rank) and RoPE layout, with and without the normaliser, head norm and output gate:
//   recurrent (T steps) == parallel (the masked form, computed here in double)
//                       == chunkwise (Prefill) for chunk sizes 1, 7, 32 and the whole sequence,
// and Step and Prefill leave the same state (which equals the parallel form's final state).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/recur.hpp"
#include "tests/runtime/attention_test_util.h"

namespace recur {
namespace {

using testing::BlockRunner;
using testing::MaxAbs;
using testing::MaxAbsF;
using testing::MaxMag;
using testing::Vec;

constexpr int kD = 24, kHeads = 3, kHd = 8, kVocab = 11;
constexpr size_t kT = 45;  // Not a multiple of 7 or 32: partial last chunks.

struct Config {
  std::string phi, decay, rope;
  bool normalise = false, output_gate = false, head_norm = false;
  int gate_rank = 0;
  std::string Name() const {
    return "phi=" + phi + " decay=" + decay + (gate_rank ? "(rank " + std::to_string(gate_rank) + ")" : "") +
           " rope=" + rope + (normalise ? " normalise" : "") + (output_gate ? " gate" : "") +
           (head_norm ? " head_norm" : "");
  }
};

fb::ModelT LinearModel(const Config& c, int chunk) {
  fb::ModelT m = testing::TokenModel(kD, kVocab);
  auto layer = std::make_unique<fb::LayerT>();
  fb::LinearAttentionSpecT s;
  s.n_heads = kHeads;
  s.head_dim = kHd;
  s.feature_map = c.phi;
  s.normalise = c.normalise;
  s.decay = c.decay;
  s.rope = c.rope;
  s.rope_base = 100.0f;  // Fast rotations, so position errors would show.
  s.output_gate = c.output_gate;
  s.head_norm = c.head_norm;
  s.chunk_size = chunk;
  s.gate_rank = c.gate_rank;
  layer->block.Set(std::move(s));
  layer->norm = fb::NormKind::None;
  m.layers.push_back(std::move(layer));
  return m;
}

void Phi(const std::string& phi, double* x, size_t n) {
  if (phi == "elu1") {
    for (size_t i = 0; i < n; ++i) x[i] = (x[i] > 0 ? x[i] : std::expm1(x[i])) + 1.0;
  } else if (phi == "relu") {
    for (size_t i = 0; i < n; ++i) x[i] = std::max(x[i], 0.0);
  } else if (phi == "exp") {
    const double m = *std::max_element(x, x + n);
    for (size_t i = 0; i < n; ++i) x[i] = std::exp(x[i] - m);
  }
}

struct Reference {
  Vec out;    // [T, d_model]
  Vec state;  // [heads, hd, hd] after T tokens
  Vec z;      // [heads, hd]
};

// The parallel (masked) form in double: o_i = sum_{s <= i} (sum_j q_ij k_sj e^{B_ij - B_sj}) v_s
// with B the cumulative log decay, then the normaliser, head norm, gate and output projection.
Reference Parallel(const Config& c, testing::Weights& w, const std::vector<float>& x, size_t T) {
  const size_t H = kHeads, hd = kHd, hdk = H * hd;
  const std::string p = "layers.0.attn.";
  std::vector<Vec> q(T), k(T), v(T), qn(T), kn(T), lg(T), g(T);
  for (size_t t = 0; t < T; ++t) {
    Vec xt(x.begin() + t * kD, x.begin() + (t + 1) * kD);
    q[t] = testing::MatVecD(w[p + "q.weight"], xt.data(), hdk, kD);
    k[t] = testing::MatVecD(w[p + "k.weight"], xt.data(), hdk, kD);
    v[t] = testing::MatVecD(w[p + "v.weight"], xt.data(), hdk, kD);
    if (c.output_gate) g[t] = testing::MatVecD(w[p + "g.weight"], xt.data(), hdk, kD);
    for (size_t h = 0; h < H; ++h) {
      Phi(c.phi, q[t].data() + h * hd, hd);
      Phi(c.phi, k[t].data() + h * hd, hd);
    }
    qn[t] = q[t];
    kn[t] = k[t];
    if (c.rope != "none") {
      for (size_t h = 0; h < H; ++h) {
        testing::RopeD(q[t].data() + h * hd, hd, static_cast<double>(t), 100.0, c.rope == "interleaved");
        testing::RopeD(k[t].data() + h * hd, hd, static_cast<double>(t), 100.0, c.rope == "interleaved");
      }
    }
    lg[t].assign(hdk, 0.0);
    if (c.decay == "fixed") {
      for (size_t h = 0; h < H; ++h) {
        for (size_t j = 0; j < hd; ++j) lg[t][h * hd + j] = std::log(1.0 - std::pow(2.0, -5.0 - h));
      }
    } else if (c.decay == "gate") {
      Vec u;
      if (c.gate_rank > 0) {
        const Vec low = testing::MatVecD(w[p + "gk1.weight"], xt.data(), c.gate_rank, kD);
        u = testing::MatVecD(w[p + "gk2.weight"], low.data(), hdk, c.gate_rank);
      } else {
        u = testing::MatVecD(w[p + "gk.weight"], xt.data(), hdk, kD);
      }
      for (size_t i = 0; i < hdk; ++i) {
        const double a = u[i] + w[p + "gk.bias"][i];
        // logsigmoid(a) = -log1p(exp(-a)), stable for both signs.
        const double ls = a >= 0 ? -std::log1p(std::exp(-a)) : a - std::log1p(std::exp(a));
        lg[t][i] = ls / 16.0;
      }
    }
  }
  std::vector<Vec> B(T, Vec(hdk, 0.0));
  for (size_t t = 0; t < T; ++t) {
    for (size_t i = 0; i < hdk; ++i) B[t][i] = (t ? B[t - 1][i] : 0.0) + lg[t][i];
  }
  Reference r;
  r.out.assign(T * kD, 0.0);
  for (size_t i = 0; i < T; ++i) {
    Vec o(hdk, 0.0);
    for (size_t h = 0; h < H; ++h) {
      double den = 0.0;
      for (size_t s = 0; s <= i; ++s) {
        double a = 0.0, an = 0.0;
        for (size_t j = 0; j < hd; ++j) {
          const size_t jj = h * hd + j;
          const double e = std::exp(B[i][jj] - B[s][jj]);
          a += q[i][jj] * k[s][jj] * e;
          an += qn[i][jj] * kn[s][jj] * e;
        }
        den += an;
        for (size_t cc = 0; cc < hd; ++cc) o[h * hd + cc] += a * v[s][h * hd + cc];
      }
      if (c.normalise) {
        for (size_t cc = 0; cc < hd; ++cc) o[h * hd + cc] /= (den + 1e-6);
      }
      if (c.head_norm) {
        double ss = 0.0;
        for (size_t cc = 0; cc < hd; ++cc) ss += o[h * hd + cc] * o[h * hd + cc];
        const double inv = 1.0 / std::sqrt(ss / hd + 1e-5);
        for (size_t cc = 0; cc < hd; ++cc) o[h * hd + cc] *= inv * w[p + "norm.weight"][cc];
      }
    }
    if (c.output_gate) {
      for (size_t j = 0; j < hdk; ++j) o[j] *= g[i][j] / (1.0 + std::exp(-g[i][j]));
    }
    const Vec out = testing::MatVecD(w[p + "o.weight"], o.data(), kD, hdk);
    std::copy(out.begin(), out.end(), r.out.begin() + i * kD);
  }
  r.state.assign(H * hd * hd, 0.0);
  r.z.assign(hdk, 0.0);
  for (size_t s = 0; s < T; ++s) {
    for (size_t h = 0; h < H; ++h) {
      for (size_t j = 0; j < hd; ++j) {
        const size_t jj = h * hd + j;
        const double e = std::exp(B[T - 1][jj] - B[s][jj]);
        r.z[jj] += kn[s][jj] * e;
        for (size_t cc = 0; cc < hd; ++cc) {
          r.state[(h * hd + j) * hd + cc] += k[s][jj] * e * v[s][h * hd + cc];
        }
      }
    }
  }
  return r;
}

std::vector<Config> AllConfigs() {
  std::vector<Config> out;
  int n = 0;
  for (const char* phi : {"identity", "elu1", "relu", "exp"}) {
    for (const char* decay : {"none", "fixed", "gate", "gate_low"}) {
      for (const char* rope : {"none", "interleaved", "half"}) {
        Config c;
        c.phi = phi;
        c.decay = std::string(decay) == "gate_low" ? "gate" : decay;
        c.gate_rank = std::string(decay) == "gate_low" ? 5 : 0;
        c.rope = rope;
        // Vary the optional parts across the grid so every one meets every kind.
        c.normalise = c.phi != "identity" && n % 2 == 0;
        c.output_gate = n % 3 != 1;
        c.head_norm = n % 4 >= 2;
        out.push_back(c);
        ++n;
      }
    }
  }
  return out;
}

TEST_CASE("linear_attention: recurrent == parallel (double) == chunkwise for chunks 1, 7, 32, T") {
  testing::TempDir dir;
  const std::vector<float> x = testing::RandomInputs(kT * kD, 7);
  double worst_out = 0.0, worst_state = 0.0, worst_chunk_vs_step = 0.0;
  int index = 0;
  for (const Config& c : AllConfigs()) {
    CAPTURE(c.Name());
    testing::Weights w;
    const uint32_t seed = 100 + index++;
    std::vector<float> step_out(kT * kD), step_state;
    Reference ref;
    for (int chunk : {1, 7, 32, static_cast<int>(kT)}) {
      CAPTURE(chunk);
      testing::Weights wc;
      const std::string path = dir.File("la" + std::to_string(index) + "_" + std::to_string(chunk) + ".recur");
      testing::WriteRandomModel(LinearModel(c, chunk), path, &wc, seed);
      BlockRunner r(path, 0, kT);
      Threads threads(chunk == 7 ? 2 : 1);
      if (chunk == 1) {
        w = wc;
        ref = Parallel(c, w, x, kT);
        for (size_t t = 0; t < kT; ++t) {
          r.block->Step(x.data() + t * kD, step_out.data() + t * kD, r.state.data(),
                        r.scratch.data(), threads);
        }
        step_state = r.state;
        const double scale = std::max(1.0, MaxMag(ref.out));
        const double err = MaxAbs(step_out.data(), ref.out.data(), step_out.size()) / scale;
        worst_out = std::max(worst_out, err);
        CHECK(err < 2e-5);
        const double serr = MaxAbs(step_state.data() + 16, ref.state.data(), ref.state.size()) /
                            std::max(1.0, MaxMag(ref.state));
        worst_state = std::max(worst_state, serr);
        CHECK(serr < 2e-5);
        if (c.normalise) {
          CHECK(MaxAbs(step_state.data() + 16 + ref.state.size(), ref.z.data(), ref.z.size()) /
                    std::max(1.0, MaxMag(ref.z)) < 2e-5);
        }
        int64_t pos;
        std::memcpy(&pos, step_state.data(), sizeof(pos));
        CHECK(pos == static_cast<int64_t>(kT));
        r.Reset();
      }
      // The chunkwise form, as one prefill and as a prefill split in two.
      std::vector<float> out(kT * kD);
      r.block->Prefill(x.data(), kT, out.data(), r.state.data(), r.scratch.data(), threads);
      const double scale = std::max(1.0, MaxMag(ref.out));
      const double err = MaxAbs(out.data(), ref.out.data(), out.size()) / scale;
      worst_out = std::max(worst_out, err);
      CHECK(err < 2e-5);
      const double vs_step = MaxAbsF(out.data(), step_out.data(), out.size()) / scale;
      worst_chunk_vs_step = std::max(worst_chunk_vs_step, vs_step);
      CHECK(vs_step < 2e-5);
      const double sdiff = MaxAbsF(r.state.data() + 16, step_state.data() + 16, r.state.size() - 16) /
                           std::max(1.0, MaxMag(ref.state));
      worst_chunk_vs_step = std::max(worst_chunk_vs_step, sdiff);
      CHECK(sdiff < 2e-5);
      CHECK(std::memcmp(r.state.data(), step_state.data(), 8) == 0);  // The position.

      r.Reset();
      const size_t split = 13;
      r.block->Prefill(x.data(), split, out.data(), r.state.data(), r.scratch.data(), threads);
      r.block->Prefill(x.data() + split * kD, kT - split, out.data() + split * kD, r.state.data(),
                       r.scratch.data(), threads);
      CHECK(MaxAbs(out.data(), ref.out.data(), out.size()) / scale < 2e-5);
      CHECK(MaxAbsF(r.state.data() + 16, step_state.data() + 16, r.state.size() - 16) /
                std::max(1.0, MaxMag(ref.state)) < 2e-5);
    }
  }
  MESSAGE("linear_attention over ", index, " configs: max |out - parallel(double)| / max(1, |out|) ",
          worst_out, "; state vs parallel ", worst_state, "; chunkwise vs recurrent ",
          worst_chunk_vs_step);
}

TEST_CASE("linear_attention: a session runs it; prefill logits == step logits") {
  testing::TempDir dir;
  Config c{"elu1", "fixed", "half", true, true, true, 0};
  fb::ModelT m = LinearModel(c, 16);
  m.layers[0]->norm = fb::NormKind::RMSNorm;
  const std::string path = dir.File("la.recur");
  testing::Weights w;
  testing::WriteRandomModel(std::move(m), path, &w, 5);
  auto model = Model::Load(path);
  REQUIRE_MESSAGE(model.ok(), model.status().ToString());
  REQUIRE((*model)->runnable().ok());
  CHECK((*model)->info().layers[0].kind == "linear_attention");
  CHECK((*model)->info().layers[0].runnable);
  auto session = Session::Create(*model);
  REQUIRE(session.ok());
  const std::vector<int32_t> tokens = {1, 5, 2, 9, 9, 0, 3, 7, 4, 10, 6, 2, 8, 1, 1, 5, 3, 2, 0, 9};
  std::vector<float> step(tokens.size() * kVocab);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const float* logits = nullptr;
    REQUIRE((*session)->StepToken(tokens[i], &logits).ok());
    std::memcpy(step.data() + i * kVocab, logits, kVocab * sizeof(float));
  }
  const std::vector<float> step_state((*session)->state(),
                                      (*session)->state() + (*session)->state_bytes() / 4);
  // Constant state: all of it is in use (the session's block adds alignment padding).
  CHECK((*session)->state_bytes_in_use() == (*model)->info().state_bytes);
  (*session)->Reset();
  std::vector<float> all(tokens.size() * kVocab);
  REQUIRE((*session)->PrefillTokens(tokens.data(), tokens.size(), nullptr, all.data()).ok());
  const double d = MaxAbsF(all.data(), step.data(), all.size());
  MESSAGE("linear_attention session: prefill vs step logits max |diff| ", d);
  CHECK(d < 1e-4);
  CHECK(MaxAbsF((*session)->state(), step_state.data(), step_state.size()) < 1e-4);
}

TEST_CASE("linear_attention: bad specs are refused with a message naming the field") {
  testing::TempDir dir;
  Config c{"identity", "none", "none", false, false, false, 0};
  fb::ModelT m = LinearModel(c, 16);
  m.layers[0]->block.AsLinearAttentionSpec()->normalise = true;
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::Model::Pack(fbb, &m));
  auto r = ExpectedTensors(*flatbuffers::GetRoot<fb::Model>(fbb.GetBufferPointer()));
  REQUIRE(!r.ok());
  CHECK(testing::Contains(r.status().message(), "normalise"));
  m.layers[0]->block.AsLinearAttentionSpec()->normalise = false;
  m.layers[0]->block.AsLinearAttentionSpec()->rope = "half";
  m.layers[0]->block.AsLinearAttentionSpec()->head_dim = 7;
  flatbuffers::FlatBufferBuilder fbb2;
  fbb2.Finish(fb::Model::Pack(fbb2, &m));
  r = ExpectedTensors(*flatbuffers::GetRoot<fb::Model>(fbb2.GetBufferPointer()));
  REQUIRE(!r.ok());
  CHECK(testing::Contains(r.status().message(), "even head_dim"));
}

}  // namespace
}  // namespace recur
