// The hippo and s4d blocks: Step and Prefill leave identical state (and outputs), the hippo
// memory model that `recur hippo` writes streams the coefficients ops/hippo.h computes in double,
// and the s4d block equals a double-precision S4D layer (recurrence and convolution).
#include "ops/hippo.h"

#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <cstring>
#include <random>
#include <vector>

#include "examples/hippo_model.h"
#include "formats/block_tensors.h"
#include "formats/recur_file.h"
#include "formats/recur_writer.h"
#include "runtime/blocks/block.h"
#include "runtime/recur.hpp"
#include "runtime/threads.h"
#include "tests/runtime/fixture_util.h"
#include "tests/test_util.h"

namespace recur {
namespace {

namespace hp = ops::hippo;

// One layer of a file as a runnable block, with its planned state and scratch.
struct BlockRig {
  std::shared_ptr<const RecurFile> file;
  std::unique_ptr<Block> block;
  size_t state_floats = 0, d_model = 0;

  explicit BlockRig(const std::string& path) {
    auto f = RecurFile::Open(path);
    REQUIRE(f.ok());
    file = *f;
    const fb::Model& m = file->model();
    d_model = static_cast<size_t>(m.d_model());
    LayerContext ctx{*file, m, *m.layers()->Get(0), 0, "layers.0."};
    auto b = MakeBlock(ctx);
    REQUIRE_MESSAGE(b.ok(), b.status().message());
    block = std::move(b).value();
    state_floats = block->Plan(1).state_bytes / sizeof(float);
  }

  // Runs x [T, d_model] as T steps and as one prefill (in pieces of `piece` tokens); returns the
  // largest output difference, and checks the states are bit-identical.
  double StepVsPrefill(const std::vector<float>& x, size_t T, size_t piece) {
    const Threads threads(1);
    std::vector<float> s1(state_floats, 0.0f), s2(state_floats, 0.0f);
    std::vector<float> scratch(block->Plan(std::max<size_t>(T, 1)).scratch_bytes / 4 + 64);
    std::vector<float> o1(T * d_model), o2(T * d_model);
    for (size_t t = 0; t < T; ++t) {
      block->Step(x.data() + t * d_model, o1.data() + t * d_model, s1.data(), scratch.data(),
                  threads);
    }
    for (size_t t0 = 0; t0 < T; t0 += piece) {
      const size_t n = std::min(piece, T - t0);
      block->Prefill(x.data() + t0 * d_model, n, o2.data() + t0 * d_model, s2.data(),
                     scratch.data(), threads);
    }
    CHECK(std::memcmp(s1.data(), s2.data(), state_floats * sizeof(float)) == 0);
    double worst = 0;
    for (size_t i = 0; i < o1.size(); ++i) worst = std::max(worst, double(std::abs(o1[i] - o2[i])));
    return worst;
  }
};

std::vector<float> RandomFrames(size_t T, size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(T * d);
  for (float& x : v) x = g(rng);
  return v;
}

TEST_CASE("hippo block: step and prefill leave identical state for every measure and method") {
  testing::TempDir dir;
  struct Case {
    const char* measure;
    const char* method;
  };
  for (Case c : {Case{"legs", "bilinear"}, Case{"legs", "euler"}, Case{"legs", "backward"},
                 Case{"legt", "zoh"}, Case{"legt", "bilinear"}, Case{"lagt", "backward"},
                 Case{"fourier", "euler"}}) {
    const std::string measure = c.measure, method = c.method;
    CAPTURE(measure);
    CAPTURE(method);
    hippo_model::Options o;
    o.measure = c.measure;
    o.method = c.method;
    o.n = 9;
    o.channels = 3;
    o.dt = 0.05;
    const std::string path = dir.File(std::string(c.measure) + c.method + ".recur");
    REQUIRE(hippo_model::Write(o, path).ok());
    BlockRig rig(path);
    const size_t T = 40;
    const std::vector<float> x = RandomFrames(T, rig.d_model, 5);
    CHECK(rig.StepVsPrefill(x, T, 13) == 0.0);
  }
}

TEST_CASE("hippo model: streams the double-precision LegS and LegT coefficients") {
  testing::TempDir dir;
  const size_t n = 16, ch = 2, T = 300;
  std::vector<float> frames(T * ch);
  for (size_t t = 0; t < T; ++t) {
    frames[t * ch] = std::sin(0.05f * t) + 0.3f;
    frames[t * ch + 1] = 0.01f * t - 1.0f;
  }
  for (const std::string measure : {"legs", "legt"}) {
    CAPTURE(measure);
    hippo_model::Options o;
    o.measure = measure;
    o.n = n;
    o.channels = ch;
    o.method = measure == "legs" ? "bilinear" : "zoh";
    o.dt = 0.01;
    o.theta = 1.0;
    const std::string path = dir.File(measure + ".recur");
    REQUIRE(hippo_model::Write(o, path).ok());
    auto model = Model::Load(path);
    REQUIRE(model.ok());
    REQUIRE((*model)->runnable().ok());
    CHECK((*model)->info().layers[0].kind == "hippo");
    CHECK((*model)->info().state_bytes >= n * ch * sizeof(float));
    auto session = Session::Create(*model);
    REQUIRE(session.ok());
    // The double reference: ops::hippo's LegS update or the dense ZOH update.
    std::vector<std::vector<double>> c(ch, std::vector<double>(n, 0.0));
    auto zoh =
        hp::Discretise(hp::Transition(hp::Measure::kLegT, n, 1.0, hp::Convention::kStateSpaces),
                       0.01, hp::Method::kZoh);
    REQUIRE(zoh.ok());
    double worst = 0, scale = 0;
    for (size_t t = 0; t < T; ++t) {
      const float* out = nullptr;
      REQUIRE((*session)->StepFrame(frames.data() + t * ch, &out).ok());
      for (size_t k = 0; k < ch; ++k) {
        if (o.measure == "legs") {
          hp::LegsStepBilinear(c[k].data(), frames[t * ch + k], t, n);
        } else {
          std::vector<double> nc = hp::MatVec(zoh->A, c[k]);
          for (size_t i = 0; i < n; ++i) nc[i] += zoh->B[i] * frames[t * ch + k];
          c[k] = nc;
        }
        for (size_t i = 0; i < n; ++i) {
          worst = std::max(worst, std::abs(out[k * n + i] - c[k][i]));
          scale = std::max(scale, std::abs(c[k][i]));
        }
      }
    }
    MESSAGE(measure, " model vs double coefficients over 300 samples: ", worst, " (scale ", scale,
            ")");
    CHECK(worst < 1e-5 * std::max(1.0, scale));
    // hippo.A / hippo.B are what ops::hippo computes.
    const TensorInfo* A = (*model)->FindTensor("hippo.A");
    REQUIRE(A != nullptr);
    CHECK(A->dtype == "f64");
    auto want = hippo_model::ExportedMatrices(o);
    REQUIRE(want.ok());
    CHECK(std::memcmp(A->data, want->A.a.data(), n * n * sizeof(double)) == 0);
  }
}

TEST_CASE("hippo model: a LegS memory reconstructs a constant and a ramp through output_proj") {
  testing::TempDir dir;
  hippo_model::Options o;
  o.n = 8;
  o.recon = 5;
  const std::string path = dir.File("recon.recur");
  REQUIRE(hippo_model::Write(o, path).ok());
  auto model = Model::Load(path);
  REQUIRE(model.ok());
  auto session = Session::Create(*model);
  REQUIRE(session.ok());
  const float* out = nullptr;
  for (int t = 0; t < 50; ++t) {
    const float u = 1.5f;
    REQUIRE((*session)->StepFrame(&u, &out).ok());
  }
  for (int j = 0; j < 5; ++j) CHECK(out[j] == doctest::Approx(1.5).epsilon(1e-5));
  CHECK((*model)->info().output == "features (5)");
}

TEST_CASE("hippo block: clear errors for specs it cannot run") {
  testing::TempDir dir;
  hippo_model::Options o;
  o.method = "zoh";  // LegS exact is offline-only.
  CHECK(!hippo_model::Write(o, dir.File("x.recur")).ok());
  o.measure = "legq";
  o.method = "bilinear";
  const Status s = hippo_model::Write(o, dir.File("y.recur"));
  CHECK(!s.ok());
  CHECK(testing::Contains(s.message(), "legq"));
}

// ---- s4d

struct S4dWeights {
  size_t H, M;
  std::vector<float> log_dt, log_a, a_im, C, D, W, bias, in_w, in_b, out_w, out_b;
};

std::string WriteS4d(const testing::TempDir& dir, const std::string& init, const std::string& disc,
                     bool glu, S4dWeights* w) {
  const size_t H = 12, N = 8;
  const size_t M = init == "real" ? N : N / 2;
  w->H = H;
  w->M = M;
  std::mt19937 rng(4);
  std::normal_distribution<float> g;
  std::uniform_real_distribution<float> uni(std::log(0.001f), std::log(0.1f));
  auto parsed = hp::ParseS4dInit(init);
  REQUIRE(parsed.ok());
  const std::vector<std::complex<double>> A = hp::S4dA(*parsed, M, N);
  for (size_t c = 0; c < H; ++c) {
    w->log_dt.push_back(uni(rng));
    for (size_t m = 0; m < M; ++m) {
      w->log_a.push_back(static_cast<float>(std::log(-A[m].real())));
      w->a_im.push_back(static_cast<float>(A[m].imag()));
      w->C.push_back(0.5f * g(rng));
      w->C.push_back(init == "real" ? 0.0f : 0.5f * g(rng));
    }
    w->D.push_back(g(rng));
  }
  const size_t rows = glu ? 2 * H : H;
  for (size_t i = 0; i < rows * H; ++i) w->W.push_back(0.3f * g(rng));
  for (size_t i = 0; i < rows; ++i) w->bias.push_back(0.1f * g(rng));
  w->in_w.assign(H * H, 0.0f);
  for (size_t i = 0; i < H; ++i) w->in_w[i * H + i] = 1.0f;
  w->in_b.assign(H, 0.0f);
  w->out_w = w->in_w;
  w->out_b = w->in_b;
  fb::ModelT m;
  m.architecture = "s4d";
  m.d_model = H;
  m.input_kind = fb::InputKind::Frames;
  m.input_size = H;
  m.output_kind = fb::OutputKind::Features;
  m.output_size = H;
  m.final_norm = fb::NormKind::None;
  auto layer = std::make_unique<fb::LayerT>();
  fb::S4dSpecT s;
  s.d_state = N;
  s.init = init;
  s.discretisation = disc;
  s.glu = glu;
  layer->block.Set(std::move(s));
  layer->norm = fb::NormKind::None;
  layer->residual = false;
  m.layers.push_back(std::move(layer));
  RecurWriter writer(std::move(m));
  auto add = [&](const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
    REQUIRE(writer.AddTensorFromMemory(name, DType::kF32, shape, v.data()).ok());
  };
  const int64_t h = H, mm = M, r = rows;
  add("input_proj.weight", {h, h}, w->in_w);
  add("input_proj.bias", {h}, w->in_b);
  add("output_proj.weight", {h, h}, w->out_w);
  add("output_proj.bias", {h}, w->out_b);
  add("layers.0.mixer.log_dt", {h}, w->log_dt);
  add("layers.0.mixer.log_A_real", {h, mm}, w->log_a);
  add("layers.0.mixer.A_imag", {h, mm}, w->a_im);
  add("layers.0.mixer.C", {h, mm, 2}, w->C);
  add("layers.0.mixer.D", {h}, w->D);
  add("layers.0.mixer.out_proj.weight", {r, h}, w->W);
  add("layers.0.mixer.out_proj.bias", {r}, w->bias);
  const std::string path = dir.File("s4d-" + init + disc + (glu ? "glu" : "") + ".recur");
  REQUIRE(writer.Write(path).ok());
  return path;
}

// The S4D layer in double: the convolution with K from ops::hippo, D skip, GELU, out_proj, GLU.
std::vector<double> S4dReference(const S4dWeights& w, const std::string& init,
                                 const std::string& disc, bool glu, const std::vector<float>& x,
                                 size_t T) {
  const size_t H = w.H, M = w.M;
  const bool real = init == "real";
  std::vector<double> y(T * H);
  for (size_t c = 0; c < H; ++c) {
    std::vector<std::complex<double>> A(M), B(M, 1.0), C(M), Ab(M), Bb(M);
    for (size_t m = 0; m < M; ++m) {
      A[m] = {-std::exp(double(w.log_a[c * M + m])), w.a_im[c * M + m]};
      C[m] = {w.C[(c * M + m) * 2], w.C[(c * M + m) * 2 + 1]};
    }
    hp::S4dDiscretise(A.data(), B.data(), M, std::exp(double(w.log_dt[c])),
                      disc == "zoh" ? hp::Method::kZoh : hp::Method::kBilinear, Ab.data(),
                      Bb.data());
    const std::vector<double> K = hp::S4dKernel(C.data(), Ab.data(), Bb.data(), M, T, real);
    for (size_t t = 0; t < T; ++t) {
      double s = w.D[c] * x[t * H + c];
      for (size_t l = 0; l <= t; ++l) s += K[l] * x[(t - l) * H + c];
      y[t * H + c] = 0.5 * s * (1.0 + std::erf(s / std::sqrt(2.0)));  // GELU (erf)
    }
  }
  const size_t rows = glu ? 2 * H : H;
  std::vector<double> out(T * H);
  for (size_t t = 0; t < T; ++t) {
    std::vector<double> z(rows);
    for (size_t r = 0; r < rows; ++r) {
      double s = w.bias[r];
      for (size_t c = 0; c < H; ++c) s += double(w.W[r * H + c]) * y[t * H + c];
      z[r] = s;
    }
    for (size_t c = 0; c < H; ++c) {
      out[t * H + c] = glu ? z[c] / (1.0 + std::exp(-z[H + c])) : z[c];
    }
  }
  return out;
}

TEST_CASE("s4d block: step == prefill (convolution) and both equal the double S4D layer") {
  testing::TempDir dir;
  for (const std::string init : {"lin", "inv", "real"}) {
    for (const std::string disc : {"zoh", "bilinear"}) {
      for (bool glu : {true, false}) {
        CAPTURE(init);
        CAPTURE(disc);
        CAPTURE(glu);
        S4dWeights w;
        const std::string path = WriteS4d(dir, init, disc, glu, &w);
        BlockRig rig(path);
        const size_t T = 300;  // Longer than the block's 256-tap kernel: two convolution pieces.
        const std::vector<float> x = RandomFrames(T, w.H, 8);
        const double sp = rig.StepVsPrefill(x, T, 300);
        const double sp2 = rig.StepVsPrefill(x, T, 37);
        MESSAGE("s4d ", init, "/", disc, glu ? "/glu" : "", ": step vs prefill max |diff| ", sp,
                " (chunks of 37: ", sp2, ")");
        CHECK(sp < 2e-5);
        CHECK(sp2 < 2e-5);
        // Against the double reference, through the model.
        auto model = Model::Load(path);
        REQUIRE(model.ok());
        REQUIRE((*model)->runnable().ok());
        auto session = Session::Create(*model);
        REQUIRE(session.ok());
        const std::vector<double> want = S4dReference(w, init, disc, glu, x, T);
        double worst = 0;
        for (size_t t = 0; t < T; ++t) {
          const float* out = nullptr;
          REQUIRE((*session)->StepFrame(x.data() + t * w.H, &out).ok());
          for (size_t c = 0; c < w.H; ++c) {
            worst = std::max(worst, std::abs(out[c] - want[t * w.H + c]));
          }
        }
        MESSAGE("  vs double reference: ", worst);
        CHECK(worst < 1e-4);
      }
    }
  }
}

TEST_CASE("s4d and hippo specs: tensor lists and bad sizes") {
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = 8;
  m.input_kind = fb::InputKind::Frames;
  m.input_size = 2;
  m.output_kind = fb::OutputKind::Features;
  m.output_size = 3;
  auto layer = std::make_unique<fb::LayerT>();
  fb::HippoSpecT h;
  h.measure = "legs";
  h.n = 5;
  h.d_input = 2;  // 10 coefficients > d_model 8.
  layer->block.Set(h);
  m.layers.push_back(std::move(layer));
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::Model::Pack(fbb, &m));
  auto list = ExpectedTensors(*fb::GetModel(fbb.GetBufferPointer()));
  CHECK(!list.ok());
  CHECK(testing::Contains(list.status().message(), "must fit in d_model"));
}

}  // namespace
}  // namespace recur

namespace recur {
namespace {

TEST_CASE("hippo and s4d models: saved state continues bit-identically, and forks") {
  testing::TempDir dir;
  for (const char* measure : {"legs", "legt"}) {
    hippo_model::Options o;
    o.measure = measure;
    o.n = 16;
    o.channels = 2;
    const std::string path = dir.File(std::string(measure) + "-state.recur");
    REQUIRE(hippo_model::Write(o, path).ok());
    testing::CheckFrameStateRoundTrip(testing::LoadModel(path, 1));
  }
  S4dWeights w;
  testing::CheckFrameStateRoundTrip(testing::LoadModel(WriteS4d(dir, "lin", "zoh", true, &w), 1));
}

}  // namespace
}  // namespace recur
