#include "formats/synth.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <span>
#include <vector>

#include "formats/block_tensors.h"
#include "formats/dtype_convert.h"
#include "formats/recur_file.h"
#include "formats/recur_writer.h"
#include "formats/row_fill.h"

namespace recur {
namespace {

// ---------------------------------------------------------------------------- presets

struct Mamba1Shape {
  int d_model, layers, vocab;
};

fb::ModelT TokenModel(const char* architecture, int d_model, int vocab) {
  fb::ModelT m;
  m.format_version = kRecurFormatVersion;
  m.architecture = architecture;
  m.d_model = d_model;
  m.input_kind = fb::InputKind::Tokens;
  m.vocab_size = vocab;
  m.output_kind = fb::OutputKind::Logits;
  m.output_size = vocab;
  m.tie_embeddings = true;
  m.final_norm = fb::NormKind::RMSNorm;
  m.final_norm_eps = 1e-5f;
  return m;
}

template <class Spec>
void AddLayers(fb::ModelT& m, int layers, const Spec& spec) {
  for (int i = 0; i < layers; ++i) {
    auto layer = std::make_unique<fb::LayerT>();
    layer->block.Set(Spec(spec));
    layer->norm = fb::NormKind::RMSNorm;
    layer->norm_eps = 1e-5f;
    layer->residual = true;
    m.layers.push_back(std::move(layer));
  }
}

// Mamba-1 as state-spaces/mamba-* publish it: expand 2, d_state 16, d_conv 4, dt_rank
// ceil(d_model / 16), vocabulary 50277 padded to a multiple of 8, tied embeddings.
SynthPreset Mamba1Preset(const char* name, int d_model, int layers, int vocab = 50280) {
  SynthPreset p;
  p.name = name;
  p.layers = layers;
  p.description = "Mamba-1: d_model " + std::to_string(d_model) + ", " + std::to_string(layers) +
                  " layers, d_inner " + std::to_string(2 * d_model) + ", d_state 16, vocab " +
                  std::to_string(vocab);
  p.make = [d_model, vocab](int n) {
    fb::ModelT m = TokenModel("mamba1", d_model, vocab);
    fb::Mamba1SpecT s;
    s.d_inner = 2 * d_model;
    s.d_state = 16;
    s.d_conv = 4;
    s.dt_rank = (d_model + 15) / 16;
    s.conv_bias = true;
    s.proj_bias = false;
    AddLayers(m, n, s);
    return m;
  };
  return p;
}

// Mamba-2 as state-spaces/mamba2-* publish it: expand 2, d_state 128, head_dim 64, one group,
// d_conv 4, chunk 256, vocabulary padded to a multiple of 16, tied embeddings.
SynthPreset Mamba2Preset(const char* name, int d_model, int layers, int vocab = 50288,
                         int d_state = 128, int head_dim = 64) {
  SynthPreset p;
  p.name = name;
  p.layers = layers;
  p.description = "Mamba-2: d_model " + std::to_string(d_model) + ", " + std::to_string(layers) +
                  " layers, " + std::to_string(2 * d_model / head_dim) + " heads of " +
                  std::to_string(head_dim) + ", d_state " + std::to_string(d_state) +
                  ", vocab " + std::to_string(vocab);
  p.make = [d_model, vocab, d_state, head_dim](int n) {
    fb::ModelT m = TokenModel("mamba2", d_model, vocab);
    fb::Mamba2SpecT s;
    s.d_inner = 2 * d_model;
    s.d_state = d_state;
    s.d_conv = 4;
    s.head_dim = head_dim;
    s.n_heads = 2 * d_model / head_dim;
    s.n_groups = 1;
    s.chunk_size = 256;
    s.conv_bias = true;
    s.proj_bias = false;
    s.norm_before_gate = false;
    s.norm_eps = 1e-5f;
    AddLayers(m, n, s);
    return m;
  };
  return p;
}

// The width of an attention preset. The 130M class is GPT-2-small's: d_model 768, blocks of
// [mixer, gelu mlp d_ff 3072], 12 heads of 64, GPT-NeoX vocabulary, tied embeddings.
struct AttentionShape {
  int d_model = 768, heads = 12, head_dim = 64, d_ff = 3072, vocab = 50280;
  std::string Describe() const {
    return "d_model " + std::to_string(d_model) + ", " + std::to_string(heads) + " heads of " +
           std::to_string(head_dim) + ", mlp " + std::to_string(d_ff) + ", vocab " +
           std::to_string(vocab);
  }
};
constexpr AttentionShape kTinyAttention{64, 4, 16, 128, 256};

// `blocks` counts [mixer, mlp] pairs (two Layer entries each); half-split RoPE.
fb::ModelT AttentionModel(const char* architecture, const AttentionShape& shape, int blocks,
                          const std::function<void(fb::LayerT*)>& mixer) {
  fb::ModelT m = TokenModel(architecture, shape.d_model, shape.vocab);
  for (int i = 0; i < blocks; ++i) {
    auto attn = std::make_unique<fb::LayerT>();
    mixer(attn.get());
    attn->norm = fb::NormKind::RMSNorm;
    attn->norm_eps = 1e-5f;
    attn->residual = true;
    m.layers.push_back(std::move(attn));
    auto mlp = std::make_unique<fb::LayerT>();
    fb::MlpSpecT spec;
    spec.d_ff = shape.d_ff;
    spec.activation = fb::Activation::GELU;
    spec.glu = false;
    spec.bias = false;
    mlp->block.Set(std::move(spec));
    mlp->norm = fb::NormKind::RMSNorm;
    mlp->norm_eps = 1e-5f;
    mlp->residual = true;
    m.layers.push_back(std::move(mlp));
  }
  return m;
}

SynthPreset SoftmaxPreset(const char* name, int kv_heads, const char* mode, int window,
                          const std::string& what, AttentionShape shape = {}, int blocks = 12) {
  SynthPreset p;
  p.name = name;
  p.layers = blocks;
  p.description = "softmax attention, " + what + ": " + std::to_string(blocks) + " blocks, " +
                  shape.Describe();
  p.make_attention = [kv_heads, mode, window, shape](int blocks, int64_t max_context) {
    return AttentionModel("softmax_attention", shape, blocks, [&](fb::LayerT* layer) {
      fb::SoftmaxAttentionSpecT s;
      s.n_heads = shape.heads;
      s.n_kv_heads = kv_heads;
      s.head_dim = shape.head_dim;
      s.rope = "half";
      s.rope_base = 10000.0f;
      s.mode = mode;
      s.window = window;
      s.max_context = max_context;
      layer->block.Set(std::move(s));
    });
  };
  p.make = [make = p.make_attention](int blocks) { return make(blocks, kDefaultSynthContext); };
  return p;
}

SynthPreset LinearPreset(const char* name, const char* feature_map, bool normalise,
                         const char* decay, bool gate_and_norm, const std::string& what,
                         AttentionShape shape = {}, int blocks = 12) {
  SynthPreset p;
  p.name = name;
  p.layers = blocks;
  p.description = what + ": " + std::to_string(blocks) + " blocks, " + shape.Describe();
  p.make = [=](int blocks) {
    return AttentionModel("linear_attention", shape, blocks, [&](fb::LayerT* layer) {
      fb::LinearAttentionSpecT s;
      s.n_heads = shape.heads;
      s.head_dim = shape.head_dim;
      s.feature_map = feature_map;
      s.normalise = normalise;
      s.decay = decay;
      s.rope = "none";
      s.output_gate = gate_and_norm;
      s.head_norm = gate_and_norm;
      layer->block.Set(std::move(s));
    });
  };
  return p;
}

// RWKV-7 "Goose" 0.1B (rwkv7-g1 0.1b): d_model 768, 12 layers, heads of 64, ffn 3072, LoRA
// widths 64 (decay), 64 (a), 32 (v; none in layer 0), 128 (g), vocabulary 65536, untied head,
// LayerNorm before the head. Each layer is one whole RWKV block (own ln1/ln2: no layer norm).
SynthPreset Rwkv7Preset(const char* name, int d_model, int layers, int d_ffn, int vocab = 65536) {
  SynthPreset p;
  p.name = name;
  p.layers = layers;
  p.description = "RWKV-7: d_model " + std::to_string(d_model) + ", " + std::to_string(layers) +
                  " layers, heads of 64, ffn " + std::to_string(d_ffn) + ", vocab " +
                  std::to_string(vocab);
  p.make = [d_model, d_ffn, vocab](int n) {
    fb::ModelT m = TokenModel("rwkv7", d_model, vocab);
    m.tie_embeddings = false;
    m.final_norm = fb::NormKind::LayerNorm;
    for (int i = 0; i < n; ++i) {
      fb::RwkvSpecT s;
      s.version = 7;
      s.n_heads = d_model / 64;
      s.head_size = 64;
      s.d_ffn = d_ffn;
      s.group_norm_eps = 64e-5f;
      s.lora_decay = 64;
      s.lora_a = 64;
      s.lora_v = i == 0 ? 0 : 32;
      s.lora_g = 128;
      auto layer = std::make_unique<fb::LayerT>();
      layer->block.Set(std::move(s));
      layer->norm = fb::NormKind::None;
      layer->residual = true;
      m.layers.push_back(std::move(layer));
    }
    return m;
  };
  return p;
}

// ---------------------------------------------------------------------------- values

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1).
double Uniform(uint64_t& state) { return static_cast<double>(SplitMix(state) >> 11) * 0x1.0p-53; }

uint64_t HashName(const std::string& name, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// How a tensor is initialised, from its canonical name.
enum class Init { kZero, kOne, kUniform, kALogRange, kALogHeads, kDtBias };

Init InitOf(const ExpectedTensor& e, bool mamba1) {
  const std::string& n = e.name;
  if (EndsWith(n, ".A_log")) return mamba1 ? Init::kALogRange : Init::kALogHeads;
  if (EndsWith(n, ".D") || EndsWith(n, "norm.weight") || n == "norm_f.weight" ||
      EndsWith(n, ".ln1.weight") || EndsWith(n, ".ln2.weight") || EndsWith(n, ".ln_x.weight")) {
    return Init::kOne;
  }
  if (EndsWith(n, ".dt_bias") || EndsWith(n, "dt_proj.bias")) return Init::kDtBias;
  if (EndsWith(n, ".bias")) return Init::kZero;
  return Init::kUniform;
}

// Writes row `r` (of `cols` values) of tensor `e` into out. `state` is the tensor's generator,
// advanced row by row in order.
void FillRow(const ExpectedTensor& e, Init init, size_t r, size_t cols, uint64_t& state,
             float* out) {
  // Uniform(-a, a) has variance a^2 / 3: a = sqrt(3) / sqrt(fan_in) gives 1 / fan_in, except the
  // embedding (std 0.02 as Mamba initialises it; fan_in would be the vocabulary).
  const bool embed = e.name == "embed.weight";
  const double a = embed ? 0.02 * std::sqrt(3.0) : std::sqrt(3.0 / static_cast<double>(cols));
  for (size_t c = 0; c < cols; ++c) {
    double v = 0.0;
    switch (init) {
      case Init::kZero: v = 0.0; break;
      case Init::kOne: v = 1.0; break;
      case Init::kUniform: v = (2.0 * Uniform(state) - 1.0) * a; break;
      case Init::kALogRange: v = std::log(static_cast<double>(c + 1)); break;
      case Init::kALogHeads: v = std::log(1.0 + 15.0 * Uniform(state)); break;
      case Init::kDtBias: {
        const double dt = std::exp(std::log(1e-3) + Uniform(state) * (std::log(0.1) - std::log(1e-3)));
        v = dt + std::log(-std::expm1(-dt));  // Inverse softplus.
        break;
      }
    }
    out[c] = static_cast<float>(v);
  }
}

}  // namespace

const std::vector<SynthPreset>& SynthPresets() {
  static const std::vector<SynthPreset> presets = [] {
    std::vector<SynthPreset> p;
    p.push_back(Mamba1Preset("mamba-130m", 768, 24));
    p.push_back(Mamba1Preset("mamba-370m", 1024, 48));
    p.push_back(Mamba1Preset("mamba-790m", 1536, 48));
    p.push_back(Mamba1Preset("mamba-1.4b", 2048, 48));
    p.push_back(Mamba1Preset("mamba-2.8b", 2560, 64));
    p.push_back(Mamba2Preset("mamba2-130m", 768, 24));
    p.push_back(Mamba2Preset("mamba2-370m", 1024, 48));
    p.push_back(Mamba2Preset("mamba2-780m", 1536, 48));
    p.push_back(Mamba2Preset("mamba2-1.3b", 2048, 48));
    p.push_back(Mamba2Preset("mamba2-2.7b", 2560, 64));
    p.push_back(Rwkv7Preset("rwkv7-0.1b", 768, 12, 3072));
    p.push_back(LinearPreset("linear-attention-130m", "elu1", true, "none", false,
                             "linear attention (elu+1, normalised)"));
    p.push_back(LinearPreset("retention-130m", "identity", false, "fixed", true,
                             "retention (RetNet decay g_h = 1 - 2^(-5-h), gate and head norm)"));
    p.push_back(SoftmaxPreset("attention-mha-130m", 12, "kv_cache", 0, "MHA with a KV cache"));
    p.push_back(SoftmaxPreset("attention-gqa-130m", 4, "kv_cache", 0, "GQA (4 KV heads), KV cache"));
    p.push_back(SoftmaxPreset("attention-mqa-130m", 1, "kv_cache", 0, "MQA (1 KV head), KV cache"));
    p.push_back(SoftmaxPreset("attention-window-130m", 12, "window", 4096,
                              "MHA with a 4096-token sliding window"));
    p.push_back(SoftmaxPreset("attention-recompute-130m", 12, "recompute", 0,
                              "MHA in recompute mode (keeps the layer inputs)"));
    // Small shapes of the same families, for tests and quick experiments.
    p.push_back(Mamba1Preset("mamba-tiny", 64, 2, 256));
    p.push_back(Mamba2Preset("mamba2-tiny", 64, 2, 256, 16, 16));
    p.push_back(Rwkv7Preset("rwkv7-tiny", 64, 2, 128, 256));
    p.push_back(LinearPreset("linear-attention-tiny", "elu1", true, "none", false,
                             "linear attention", kTinyAttention, 2));
    p.push_back(LinearPreset("retention-tiny", "identity", false, "fixed", true, "retention",
                             kTinyAttention, 2));
    p.push_back(LinearPreset("gla-tiny", "identity", false, "gate", true, "GLA (gated decay)",
                             kTinyAttention, 2));
    p.push_back(SoftmaxPreset("attention-window-tiny", 2, "window", 16, "GQA, window 16",
                              kTinyAttention, 2));
    p.push_back(SoftmaxPreset("attention-mha-tiny", 4, "kv_cache", 0, "MHA with a KV cache",
                              kTinyAttention, 2));
    return p;
  }();
  return presets;
}

const SynthPreset* FindSynthPreset(const std::string& name) {
  for (const SynthPreset& p : SynthPresets()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Result<ConvertReport> Synthesize(const SynthOptions& options) {
  const SynthPreset* preset = FindSynthPreset(options.preset);
  if (preset == nullptr) {
    std::string names;
    for (const SynthPreset& p : SynthPresets()) names += (names.empty() ? "" : ", ") + p.name;
    return InvalidArgument("unknown preset '" + options.preset + "' (presets: " + names + ")");
  }
  const DType target = options.dtype;
  if (target != DType::kF32 && target != DType::kF16 && target != DType::kBF16 &&
      target != DType::kQ8_0) {
    return InvalidArgument("synthetic weights can be f32, f16, bf16 or q8_0, not " +
                           std::string(DTypeName(target)));
  }
  const int layers = options.layers.value_or(preset->layers);
  if (layers < 1 || layers > 4096) {
    return InvalidArgument("layers must be in 1..4096, not " + std::to_string(layers));
  }
  fb::ModelT model = preset->make_attention && options.max_context
                         ? preset->make_attention(layers, *options.max_context)
                         : preset->make(layers);
  const bool mamba1 = model.architecture == "mamba1";
  auto add_meta = [&](const char* key, std::string value) {
    auto kv = std::make_unique<fb::KeyValueT>();
    kv->key = key;
    kv->value = std::move(value);
    model.metadata.push_back(std::move(kv));
  };
  add_meta("source", "synthetic:" + preset->name);
  add_meta("source_kind", "synthetic");
  add_meta("description", "random weights at the shape of " + preset->name + " (" +
                              preset->description + "), seed " + std::to_string(options.seed));
  add_meta("converter", kConverterVersion);
  add_meta("dtype", std::string(DTypeName(target)));
  RECUR_ASSIGN_OR_RETURN(std::vector<ExpectedTensor> expected, ExpectedTensorsOf(model));

  ConvertReport report;
  report.architecture = model.architecture;
  report.weights = "synthetic (" + preset->name + ", seed " + std::to_string(options.seed) + ")";
  RecurWriter writer(std::move(model));
  // The fill functions keep pointers into `expected`, which outlives Write().
  for (const ExpectedTensor& e : expected) {
    const size_t cols = e.shape.empty() ? 1 : static_cast<size_t>(e.shape.back());
    const Init init = InitOf(e, mamba1);
    const uint64_t seed = HashName(e.name, options.seed);
    DType dtype = e.matrix ? target : DType::kF32;
    if (dtype == DType::kQ8_0 && cols % kQ8BlockSize != 0) dtype = DType::kF16;
    // Each pass starts the tensor's generator again from its seed.
    RECUR_ASSIGN_OR_RETURN(
        uint64_t bytes,
        AddTensorFromRows(writer, e.name, e.shape, dtype, options.q8_scale_dtype,
                          [&e, init, seed, cols] {
                            return [&e, init, cols, state = seed](size_t r, float* row) mutable {
                              FillRow(e, init, r, cols, state, row);
                              return Status::Ok();
                            };
                          }));
    report.bytes_by_dtype[static_cast<int>(dtype)] += bytes;
    ++report.tensors_written;
  }
  RECUR_RETURN_IF_ERROR(writer.Write(options.output, options.progress));
  std::error_code ec;
  report.file_bytes = std::filesystem::file_size(options.output, ec);
  return report;
}

}  // namespace recur
