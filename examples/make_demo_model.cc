// make_demo_model: writes a small random-weight Mamba-1 checkpoint in the native layout
// (spec.json + model.safetensors) for the README's demo and for seeding the fuzzer.
//
// Weights are drawn as Mamba initialises them (A_log = log(1..N), D = 1, dt in [1e-3, 1e-1]
// through an inverse-softplus bias, small normal matrices), from a fixed seed, so the file is
// the same on every machine.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "formats/safetensors.h"

namespace {

struct Dims {
  int vocab, d_model, layers, d_inner, d_state, d_conv, dt_rank, d_ff;
};

struct Builder {
  std::mt19937 rng{20261122};
  std::vector<std::vector<float>> storage;
  std::vector<recur::SafetensorsWriteTensor> tensors;

  std::vector<float>& Add(const std::string& name, std::vector<int64_t> shape) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    storage.emplace_back(n, 0.0f);
    recur::SafetensorsWriteTensor t;
    t.name = name;
    t.shape = std::move(shape);
    tensors.push_back(std::move(t));
    return storage.back();
  }
  void Normal(const std::string& name, std::vector<int64_t> shape, float stddev) {
    std::normal_distribution<float> dist(0.0f, stddev);
    for (float& v : Add(name, std::move(shape))) v = dist(rng);
  }
  void Fill(const std::string& name, std::vector<int64_t> shape, float value) {
    for (float& v : Add(name, std::move(shape))) v = value;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes a small random-weight Mamba-1 model as spec.json + model.safetensors"};
  std::string out_dir = "demo";
  bool tiny = false;
  app.add_option("-o,--output", out_dir, "Folder to write (created if needed)");
  app.add_flag("--tiny", tiny, "A minimal model (for fuzzing seeds)");
  CLI11_PARSE(app, argc, argv);

  const Dims d = tiny ? Dims{16, 8, 1, 16, 4, 4, 1, 32} : Dims{256, 64, 2, 128, 16, 4, 4, 256};
  Builder b;
  b.Normal("embed.weight", {d.vocab, d.d_model}, 0.02f);
  for (int i = 0; i < d.layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    b.Fill(p + "norm.weight", {d.d_model}, 1.0f);
    b.Normal(p + "mixer.in_proj.weight", {2 * d.d_inner, d.d_model}, 0.02f);
    b.Normal(p + "mixer.conv1d.weight", {d.d_inner, d.d_conv}, 0.3f);
    b.Fill(p + "mixer.conv1d.bias", {d.d_inner}, 0.0f);
    b.Normal(p + "mixer.x_proj.weight", {d.dt_rank + 2 * d.d_state, d.d_inner}, 0.02f);
    b.Normal(p + "mixer.dt_proj.weight", {d.d_inner, d.dt_rank}, 0.1f);
    {
      // dt = exp(U[log 1e-3, log 1e-1]); the bias is softplus^-1(dt) = dt + log(1 - exp(-dt)).
      std::uniform_real_distribution<float> u(std::log(1e-3f), std::log(1e-1f));
      for (float& v : b.Add(p + "mixer.dt_proj.bias", {d.d_inner})) {
        const float dt = std::exp(u(b.rng));
        v = dt + std::log(-std::expm1(-dt));
      }
    }
    {
      std::vector<float>& a_log = b.Add(p + "mixer.A_log", {d.d_inner, d.d_state});
      for (size_t k = 0; k < a_log.size(); ++k) a_log[k] = std::log(static_cast<float>(k % d.d_state + 1));
    }
    b.Fill(p + "mixer.D", {d.d_inner}, 1.0f);
    b.Normal(p + "mixer.out_proj.weight", {d.d_model, d.d_inner}, 0.02f);
  }
  // A final mlp layer so the demo shows two block kinds.
  const std::string p = "layers." + std::to_string(d.layers) + ".";
  b.Fill(p + "norm.weight", {d.d_model}, 1.0f);
  b.Normal(p + "mlp.up.weight", {d.d_ff, d.d_model}, 0.02f);
  b.Normal(p + "mlp.down.weight", {d.d_model, d.d_ff}, 0.02f);
  b.Fill("norm_f.weight", {d.d_model}, 1.0f);

  for (size_t i = 0; i < b.tensors.size(); ++i) {
    b.tensors[i].data = std::as_bytes(std::span<const float>(b.storage[i]));
  }
  std::filesystem::create_directories(out_dir);
  recur::Status s = recur::WriteSafetensors(out_dir + "/model.safetensors", b.tensors,
                                            {{"generator", "make_demo_model"}});
  if (!s.ok()) {
    std::fprintf(stderr, "make_demo_model: %s\n", s.ToString().c_str());
    return 1;
  }

  std::ofstream spec(out_dir + "/spec.json");
  spec << "{\n"
       << "  \"format\": \"recur-spec\",\n"
       << "  \"version\": 1,\n"
       << "  \"architecture\": \"mamba1\",\n"
       << "  \"d_model\": " << d.d_model << ",\n"
       << "  \"input\": {\"kind\": \"tokens\", \"vocab_size\": " << d.vocab << "},\n"
       << "  \"output\": {\"kind\": \"logits\"},\n"
       << "  \"tie_embeddings\": true,\n"
       << "  \"final_norm\": {\"kind\": \"rmsnorm\", \"eps\": 1e-5},\n"
       << "  \"layers\": [\n";
  for (int i = 0; i < d.layers; ++i) {
    spec << "    {\"kind\": \"mamba1\", \"d_inner\": " << d.d_inner << ", \"d_state\": " << d.d_state
         << ", \"d_conv\": " << d.d_conv << ", \"dt_rank\": " << d.dt_rank << "},\n";
  }
  spec << "    {\"kind\": \"mlp\", \"d_ff\": " << d.d_ff << ", \"activation\": \"gelu\"}\n"
       << "  ],\n"
       << "  \"metadata\": {\"description\": \"random-weight demo model from make_demo_model\"},\n"
       << "  \"weights\": \"model.safetensors\"\n"
       << "}\n";
  if (!spec) {
    std::fprintf(stderr, "make_demo_model: cannot write %s/spec.json\n", out_dir.c_str());
    return 1;
  }
  std::printf("wrote %s/spec.json and %s/model.safetensors (%zu tensors)\n", out_dir.c_str(),
              out_dir.c_str(), b.tensors.size());
  return 0;
}
