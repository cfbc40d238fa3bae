#include "formats/native_spec.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "formats/recur_file.h"
#include "formats/json_limits.h"

namespace recur {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// A spec is a few KB of text; anything this large is not one.
constexpr uintmax_t kMaxSpecBytes = 16ull << 20;
// Bounds on "repeat" and the layer count: far beyond any real model, low enough that a typo
// (an extra digit) fails fast instead of building millions of layer tables.
constexpr int64_t kMaxRepeat = 10000;
constexpr size_t kMaxLayers = 100000;

std::string Join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) s += separator;
    s += items[i];
  }
  return s;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" when one candidate is close to `word`, else "".
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

// A JSON value, shortened for messages.
std::string Shown(const Json& j) {
  // Replacing invalid UTF-8 keeps dump() from throwing on a bad string.
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// Lowercase with '-' as '_', so "GELU_Tanh", "gelu-tanh" and "gelu_tanh" are one name.
std::string Normalised(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '-') c = '_';
  }
  return s;
}

enum class IntRule { kPositive, kNonNegative, kAtLeastMinusOne };

const char* Describe(IntRule rule) {
  switch (rule) {
    case IntRule::kPositive:
      return "a positive integer";
    case IntRule::kNonNegative:
      return "a non-negative integer";
    case IntRule::kAtLeastMinusOne:
      return "an integer >= -1 (-1 for none)";
  }
  return "an integer";
}

// Reads the keys of one JSON object, remembering which were asked for so that any other key can
// be reported as unknown (typo protection). Keys starting with '_' are comments.
class ObjectReader {
 public:
  ObjectReader(const Json& j, std::string path) : j_(j), path_(std::move(path)) {}

  std::string PathOf(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  const std::string& path() const { return path_; }

  // The value of `key`, or null when absent; marks the key as known either way.
  const Json* Find(const char* key) {
    known_.push_back(key);
    const auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }

  template <typename T>
  Status Int(const char* key, IntRule rule, std::optional<int64_t> default_value, T* out) {
    const Json* v = Find(key);
    if (v == nullptr) {
      if (!default_value) return Missing(key, Describe(rule));
      *out = static_cast<T>(*default_value);
      return Status::Ok();
    }
    bool ok = v->is_number_integer();
    int64_t value = 0;
    if (ok && v->is_number_unsigned()) {
      ok = v->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
      if (ok) value = static_cast<int64_t>(v->get<uint64_t>());
    } else if (ok) {
      value = v->get<int64_t>();
      ok = value >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           value <= static_cast<int64_t>(std::numeric_limits<T>::max());
    }
    if (ok) {
      switch (rule) {
        case IntRule::kPositive:
          ok = value > 0;
          break;
        case IntRule::kNonNegative:
          ok = value >= 0;
          break;
        case IntRule::kAtLeastMinusOne:
          ok = value >= -1;
          break;
      }
    }
    if (!ok) return Error(key, std::string("expected ") + Describe(rule) + ", got " + Shown(*v));
    *out = static_cast<T>(value);
    return Status::Ok();
  }

  // A finite number; `positive` demands > 0, otherwise >= 0.
  template <typename T>
  Status Number(const char* key, bool positive, T default_value, T* out) {
    const Json* v = Find(key);
    if (v == nullptr) {
      *out = default_value;
      return Status::Ok();
    }
    const char* expected = positive ? "a positive number" : "a non-negative number";
    if (!v->is_number())
      return Error(key, std::string("expected ") + expected + ", got " + Shown(*v));
    const double d = v->get<double>();
    const bool ok = std::isfinite(d) && (positive ? d > 0 : d >= 0) &&
                    std::fabs(d) <= static_cast<double>(std::numeric_limits<T>::max());
    if (!ok) return Error(key, std::string("expected ") + expected + ", got " + Shown(*v));
    *out = static_cast<T>(d);
    return Status::Ok();
  }

  Status Bool(const char* key, bool default_value, bool* out) {
    const Json* v = Find(key);
    if (v == nullptr) {
      *out = default_value;
      return Status::Ok();
    }
    if (!v->is_boolean()) return Error(key, "expected true or false, got " + Shown(*v));
    *out = v->get<bool>();
    return Status::Ok();
  }

  Status String(const char* key, std::optional<std::string> default_value, std::string* out) {
    const Json* v = Find(key);
    if (v == nullptr) {
      if (!default_value) return Missing(key, "a string");
      *out = *default_value;
      return Status::Ok();
    }
    if (!v->is_string()) return Error(key, "expected a string, got " + Shown(*v));
    *out = v->get<std::string>();
    return Status::Ok();
  }

  // One of `allowed` (compared after Normalised()).
  Status Enum(const char* key, const std::vector<std::string>& allowed,
              std::optional<std::string> default_value, std::string* out) {
    const Json* v = Find(key);
    if (v == nullptr) {
      if (!default_value) return Missing(key, "one of " + Join(allowed));
      *out = *default_value;
      return Status::Ok();
    }
    if (!v->is_string()) {
      return Error(key, "expected one of " + Join(allowed) + ", got " + Shown(*v));
    }
    const std::string value = Normalised(v->get<std::string>());
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      return Error(key, "unknown value '" + v->get<std::string>() + "'" +
                            DidYouMean(value, allowed) + "; expected one of " + Join(allowed));
    }
    *out = value;
    return Status::Ok();
  }

  // After every known key was asked for: any other key is a mistake.
  Status CheckNoUnknownKeys() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      const std::string& key = it.key();
      if (!key.empty() && key[0] == '_') continue;
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      std::vector<std::string> known = known_;
      std::sort(known.begin(), known.end());
      known.erase(std::unique(known.begin(), known.end()), known.end());
      return InvalidArgument(PathOf(key) + ": unknown key" + DidYouMean(key, known) +
                             "; known keys here: " + Join(known));
    }
    return Status::Ok();
  }

  // A required key is absent; a present key that looks like a typo of it is named.
  Status Missing(const char* key, const std::string& expected) const {
    std::string typo;
    for (auto it = j_.begin(); it != j_.end() && typo.empty(); ++it) {
      if (!DidYouMean(it.key(), {key}).empty()) typo = it.key();
    }
    return Error(key, "missing; expected " + expected +
                          (typo.empty() ? std::string() : " (is '" + typo + "' a typo for it?)"));
  }

  Status Error(std::string_view key, const std::string& what) const {
    return InvalidArgument(PathOf(key) + ": " + what);
  }

 private:
  const Json& j_;
  std::string path_;
  std::vector<std::string> known_;
};

const std::vector<std::string> kNormNames = {"rmsnorm", "layernorm", "none"};
const std::vector<std::string> kActivationNames = {"silu",      "gelu",     "relu",
                                                   "gelu_tanh", "identity", "relu_squared"};
const std::vector<std::string> kRopeNames = {"none", "interleaved", "half"};

fb::NormKind NormFromName(const std::string& name) {
  if (name == "layernorm") return fb::NormKind::LayerNorm;
  if (name == "none") return fb::NormKind::None;
  return fb::NormKind::RMSNorm;
}

fb::Activation ActivationFromName(const std::string& name) {
  if (name == "gelu") return fb::Activation::GELU;
  if (name == "relu") return fb::Activation::ReLU;
  if (name == "gelu_tanh") return fb::Activation::GELUTanh;
  if (name == "identity") return fb::Activation::Identity;
  if (name == "relu_squared") return fb::Activation::ReLUSquared;
  return fb::Activation::SiLU;
}

// A norm: "rmsnorm" | "layernorm" | "none", or {"kind": ..., "eps": ...}.
Status ParseNorm(const Json* v, const std::string& path, fb::NormKind* kind, float* eps) {
  if (v == nullptr) return Status::Ok();  // Keep the defaults.
  if (v->is_string()) {
    const std::string name = Normalised(v->get<std::string>());
    if (std::find(kNormNames.begin(), kNormNames.end(), name) == kNormNames.end()) {
      return InvalidArgument(path + ": unknown norm '" + v->get<std::string>() + "'" +
                             DidYouMean(name, kNormNames) + "; expected one of " +
                             Join(kNormNames));
    }
    *kind = NormFromName(name);
    return Status::Ok();
  }
  if (!v->is_object()) {
    return InvalidArgument(path + ": expected a norm name (" + Join(kNormNames) +
                           ") or {\"kind\": ..., \"eps\": ...}, got " + Shown(*v));
  }
  ObjectReader o(*v, path);
  std::string name;
  RECUR_RETURN_IF_ERROR(o.Enum("kind", kNormNames, std::nullopt, &name));
  *kind = NormFromName(name);
  RECUR_RETURN_IF_ERROR(o.Number<float>("eps", /*positive=*/false, *eps, eps));
  return o.CheckNoUnknownKeys();
}

Status ParseMamba1(ObjectReader& o, fb::LayerT* layer) {
  fb::Mamba1SpecT s;
  RECUR_RETURN_IF_ERROR(o.Int("d_inner", IntRule::kPositive, std::nullopt, &s.d_inner));
  RECUR_RETURN_IF_ERROR(o.Int("d_state", IntRule::kPositive, std::nullopt, &s.d_state));
  RECUR_RETURN_IF_ERROR(o.Int("d_conv", IntRule::kPositive, std::nullopt, &s.d_conv));
  RECUR_RETURN_IF_ERROR(o.Int("dt_rank", IntRule::kPositive, std::nullopt, &s.dt_rank));
  RECUR_RETURN_IF_ERROR(o.Bool("conv_bias", true, &s.conv_bias));
  RECUR_RETURN_IF_ERROR(o.Bool("proj_bias", false, &s.proj_bias));
  layer->block.Set(std::move(s));
  return Status::Ok();
}

Status ParseMamba2(ObjectReader& o, fb::LayerT* layer) {
  fb::Mamba2SpecT s;
  RECUR_RETURN_IF_ERROR(o.Int("d_inner", IntRule::kPositive, std::nullopt, &s.d_inner));
  RECUR_RETURN_IF_ERROR(o.Int("d_state", IntRule::kPositive, std::nullopt, &s.d_state));
  RECUR_RETURN_IF_ERROR(o.Int("d_conv", IntRule::kPositive, std::nullopt, &s.d_conv));
  RECUR_RETURN_IF_ERROR(o.Int("n_heads", IntRule::kPositive, std::nullopt, &s.n_heads));
  RECUR_RETURN_IF_ERROR(o.Int("head_dim", IntRule::kPositive, std::nullopt, &s.head_dim));
  RECUR_RETURN_IF_ERROR(o.Int("n_groups", IntRule::kPositive, 1, &s.n_groups));
  RECUR_RETURN_IF_ERROR(o.Int("chunk_size", IntRule::kPositive, 256, &s.chunk_size));
  RECUR_RETURN_IF_ERROR(o.Bool("conv_bias", true, &s.conv_bias));
  RECUR_RETURN_IF_ERROR(o.Bool("proj_bias", false, &s.proj_bias));
  RECUR_RETURN_IF_ERROR(o.Bool("norm_before_gate", false, &s.norm_before_gate));
  RECUR_RETURN_IF_ERROR(o.Number<float>("norm_eps", false, 1e-5f, &s.norm_eps));
  if (static_cast<int64_t>(s.d_inner) != static_cast<int64_t>(s.n_heads) * s.head_dim) {
    return o.Error("d_inner", std::to_string(s.d_inner) + " must equal n_heads * head_dim = " +
                                  std::to_string(s.n_heads) + " * " + std::to_string(s.head_dim));
  }
  if (s.n_heads % s.n_groups != 0) {
    return o.Error("n_groups", std::to_string(s.n_groups) + " must divide n_heads (" +
                                   std::to_string(s.n_heads) + ")");
  }
  layer->block.Set(std::move(s));
  return Status::Ok();
}

Status ParseRwkv(ObjectReader& o, fb::LayerT* layer) {
  fb::RwkvSpecT s;
  RECUR_RETURN_IF_ERROR(o.Int("version", IntRule::kPositive, std::nullopt, &s.version));
  if (s.version < 4 || s.version > 7) {
    return o.Error("version", "expected 4, 5, 6 or 7, got " + std::to_string(s.version));
  }
  RECUR_RETURN_IF_ERROR(o.Int("minor", IntRule::kNonNegative, 0, &s.minor));
  // RWKV-4 has no heads (its WKV is per channel); 5 and later need them.
  const std::optional<int64_t> head_default =
      s.version == 4 ? std::optional<int64_t>(0) : std::nullopt;
  const IntRule head_rule = s.version == 4 ? IntRule::kNonNegative : IntRule::kPositive;
  RECUR_RETURN_IF_ERROR(o.Int("n_heads", head_rule, head_default, &s.n_heads));
  RECUR_RETURN_IF_ERROR(o.Int("head_size", head_rule, head_default, &s.head_size));
  RECUR_RETURN_IF_ERROR(o.Int("d_ffn", IntRule::kPositive, std::nullopt, &s.d_ffn));
  RECUR_RETURN_IF_ERROR(o.Number<float>("group_norm_eps", false, 1e-5f, &s.group_norm_eps));
  // LoRA widths (v6: lora_mix, lora_decay; v7: lora_decay, lora_a, lora_v, lora_g); 0 = none.
  RECUR_RETURN_IF_ERROR(o.Int("lora_mix", IntRule::kNonNegative, 0, &s.lora_mix));
  RECUR_RETURN_IF_ERROR(o.Int("lora_decay", IntRule::kNonNegative, 0, &s.lora_decay));
  RECUR_RETURN_IF_ERROR(o.Int("lora_a", IntRule::kNonNegative, 0, &s.lora_a));
  RECUR_RETURN_IF_ERROR(o.Int("lora_v", IntRule::kNonNegative, 0, &s.lora_v));
  RECUR_RETURN_IF_ERROR(o.Int("lora_g", IntRule::kNonNegative, 0, &s.lora_g));
  layer->block.Set(std::move(s));
  return Status::Ok();
}

Status ParseHippo(ObjectReader& o, fb::LayerT* layer) {
  fb::HippoSpecT s;
  RECUR_RETURN_IF_ERROR(
      o.Enum("measure", {"legt", "legs", "lagt", "fourier"}, std::nullopt, &s.measure));
  RECUR_RETURN_IF_ERROR(o.Int("n", IntRule::kPositive, std::nullopt, &s.n));
  RECUR_RETURN_IF_ERROR(o.Int("d_input", IntRule::kPositive, std::nullopt, &s.d_input));
  // 0 (absent) leaves the step and window to the block's defaults.
  RECUR_RETURN_IF_ERROR(o.Number<double>("dt", false, 0.0, &s.dt));
  RECUR_RETURN_IF_ERROR(o.Number<double>("theta", false, 0.0, &s.theta));
  RECUR_RETURN_IF_ERROR(
      o.Enum("method", {"euler", "backward", "bilinear", "zoh", "exact"}, "bilinear", &s.method));
  layer->block.Set(std::move(s));
  return Status::Ok();
}

Status ParseS4d(ObjectReader& o, fb::LayerT* layer) {
  fb::S4dSpecT s;
  RECUR_RETURN_IF_ERROR(o.Int("d_state", IntRule::kPositive, std::nullopt, &s.d_state));
  RECUR_RETURN_IF_ERROR(o.Enum("init", {"lin", "inv", "real"}, "lin", &s.init));
  RECUR_RETURN_IF_ERROR(o.Enum("discretisation", {"zoh", "bilinear"}, "zoh", &s.discretisation));
  std::string activation;
  RECUR_RETURN_IF_ERROR(o.Enum("activation", kActivationNames, "gelu", &activation));
  s.activation = ActivationFromName(activation);
  RECUR_RETURN_IF_ERROR(o.Bool("glu", true, &s.glu));
  layer->block.Set(std::move(s));
  return Status::Ok();
}

Status ParseLinearAttention(ObjectReader& o, fb::LayerT* layer) {
  fb::LinearAttentionSpecT s;
  RECUR_RETURN_IF_ERROR(o.Int("n_heads", IntRule::kPositive, std::nullopt, &s.n_heads));
  RECUR_RETURN_IF_ERROR(o.Int("head_dim", IntRule::kPositive, std::nullopt, &s.head_dim));
  RECUR_RETURN_IF_ERROR(
      o.Enum("feature_map", {"identity", "elu1", "relu", "exp"}, "identity", &s.feature_map));
  RECUR_RETURN_IF_ERROR(o.Bool("normalise", false, &s.normalise));
  RECUR_RETURN_IF_ERROR(o.Enum("decay", {"none", "fixed", "gate"}, "none", &s.decay));
  RECUR_RETURN_IF_ERROR(o.Enum("rope", kRopeNames, "none", &s.rope));
  RECUR_RETURN_IF_ERROR(o.Number<float>("rope_base", true, 10000.0f, &s.rope_base));
  RECUR_RETURN_IF_ERROR(o.Bool("output_gate", false, &s.output_gate));
  RECUR_RETURN_IF_ERROR(o.Bool("head_norm", false, &s.head_norm));
  RECUR_RETURN_IF_ERROR(o.Int("chunk_size", IntRule::kPositive, 64, &s.chunk_size));
  RECUR_RETURN_IF_ERROR(o.Number<float>("norm_eps", false, 1e-5f, &s.norm_eps));
  RECUR_RETURN_IF_ERROR(o.Int("gate_rank", IntRule::kNonNegative, 0, &s.gate_rank));
  RECUR_RETURN_IF_ERROR(o.Number<float>("gate_normaliser", true, 16.0f, &s.gate_normaliser));
  layer->block.Set(std::move(s));
  return Status::Ok();
}

Status ParseSoftmaxAttention(ObjectReader& o, fb::LayerT* layer) {
  fb::SoftmaxAttentionSpecT s;
  RECUR_RETURN_IF_ERROR(o.Int("n_heads", IntRule::kPositive, std::nullopt, &s.n_heads));
  RECUR_RETURN_IF_ERROR(o.Int("n_kv_heads", IntRule::kPositive, s.n_heads, &s.n_kv_heads));
  RECUR_RETURN_IF_ERROR(o.Int("head_dim", IntRule::kPositive, std::nullopt, &s.head_dim));
  RECUR_RETURN_IF_ERROR(o.Enum("rope", kRopeNames, "none", &s.rope));
  RECUR_RETURN_IF_ERROR(o.Number<float>("rope_base", true, 10000.0f, &s.rope_base));
  RECUR_RETURN_IF_ERROR(o.Enum("mode", {"kv_cache", "window", "recompute"}, "kv_cache", &s.mode));
  RECUR_RETURN_IF_ERROR(
      o.Int("window", s.mode == "window" ? IntRule::kPositive : IntRule::kNonNegative,
            s.mode == "window" ? std::nullopt : std::optional<int64_t>(0), &s.window));
  RECUR_RETURN_IF_ERROR(o.Int("max_context", IntRule::kNonNegative, 0, &s.max_context));
  if (s.n_heads % s.n_kv_heads != 0) {
    return o.Error("n_kv_heads", std::to_string(s.n_kv_heads) + " must divide n_heads (" +
                                     std::to_string(s.n_heads) + ")");
  }
  layer->block.Set(std::move(s));
  return Status::Ok();
}

Status ParsePool(ObjectReader& o, fb::LayerT* layer) {
  fb::PoolSpecT s;
  RECUR_RETURN_IF_ERROR(o.Enum("mode", {"mean"}, "mean", &s.mode));
  layer->block.Set(std::move(s));
  return Status::Ok();
}

// "mlp", or "glu" for the gated form.
Status ParseMlp(ObjectReader& o, bool glu_kind, fb::LayerT* layer) {
  fb::MlpSpecT s;
  RECUR_RETURN_IF_ERROR(o.Int("d_ff", IntRule::kPositive, std::nullopt, &s.d_ff));
  std::string activation;
  RECUR_RETURN_IF_ERROR(o.Enum("activation", kActivationNames, "gelu", &activation));
  s.activation = ActivationFromName(activation);
  RECUR_RETURN_IF_ERROR(o.Bool("glu", glu_kind, &s.glu));
  if (glu_kind && !s.glu) return o.Error("glu", "must be true (or absent) for kind \"glu\"");
  RECUR_RETURN_IF_ERROR(o.Bool("bias", false, &s.bias));
  layer->block.Set(std::move(s));
  return Status::Ok();
}

Status ParseLayers(const Json* v, fb::ModelT* model) {
  if (v == nullptr) return InvalidArgument("layers: missing; expected an array of layers");
  if (!v->is_array() || v->empty()) {
    return InvalidArgument("layers: expected a non-empty array of layers, got " + Shown(*v));
  }
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& entry = (*v)[i];
    const std::string path = "layers[" + std::to_string(i) + "]";
    if (!entry.is_object()) {
      return InvalidArgument(path + ": expected an object with a \"kind\", got " + Shown(entry));
    }
    ObjectReader o(entry, path);
    std::string kind;
    RECUR_RETURN_IF_ERROR(o.Enum("kind", NativeSpecBlockKinds(), std::nullopt, &kind));
    auto layer = std::make_unique<fb::LayerT>();
    RECUR_RETURN_IF_ERROR(
        ParseNorm(o.Find("norm"), o.PathOf("norm"), &layer->norm, &layer->norm_eps));
    RECUR_RETURN_IF_ERROR(o.Bool("residual", true, &layer->residual));
    int64_t repeat = 1;
    RECUR_RETURN_IF_ERROR(o.Int("repeat", IntRule::kPositive, 1, &repeat));
    if (repeat > kMaxRepeat) {
      return o.Error("repeat",
                     "at most " + std::to_string(kMaxRepeat) + ", got " + std::to_string(repeat));
    }
    if (kind == "mamba1") {
      RECUR_RETURN_IF_ERROR(ParseMamba1(o, layer.get()));
    } else if (kind == "mamba2") {
      RECUR_RETURN_IF_ERROR(ParseMamba2(o, layer.get()));
    } else if (kind == "rwkv") {
      RECUR_RETURN_IF_ERROR(ParseRwkv(o, layer.get()));
    } else if (kind == "hippo") {
      RECUR_RETURN_IF_ERROR(ParseHippo(o, layer.get()));
    } else if (kind == "s4d") {
      RECUR_RETURN_IF_ERROR(ParseS4d(o, layer.get()));
    } else if (kind == "linear_attention") {
      RECUR_RETURN_IF_ERROR(ParseLinearAttention(o, layer.get()));
    } else if (kind == "softmax_attention") {
      RECUR_RETURN_IF_ERROR(ParseSoftmaxAttention(o, layer.get()));
    } else if (kind == "pool") {
      RECUR_RETURN_IF_ERROR(ParsePool(o, layer.get()));
    } else {
      RECUR_RETURN_IF_ERROR(ParseMlp(o, kind == "glu", layer.get()));
    }
    RECUR_RETURN_IF_ERROR(o.CheckNoUnknownKeys());
    if (model->layers.size() + static_cast<size_t>(repeat) > kMaxLayers) {
      return InvalidArgument(path + ": more than " + std::to_string(kMaxLayers) + " layers");
    }
    // Repeated layers are identical copies; the tensors of each get its own index.
    for (int64_t r = 1; r < repeat; ++r) {
      model->layers.push_back(std::make_unique<fb::LayerT>(*layer));
    }
    model->layers.push_back(std::move(layer));
  }
  return Status::Ok();
}

Status ParseInput(const Json* v, fb::ModelT* model) {
  if (v == nullptr) {
    return InvalidArgument(
        "input: missing; expected {\"kind\": \"tokens\", \"vocab_size\": N} or "
        "{\"kind\": \"frames\", \"size\": N}");
  }
  if (!v->is_object()) return InvalidArgument("input: expected an object, got " + Shown(*v));
  ObjectReader o(*v, "input");
  std::string kind;
  RECUR_RETURN_IF_ERROR(o.Enum("kind", {"tokens", "frames"}, std::nullopt, &kind));
  if (kind == "tokens") {
    model->input_kind = fb::InputKind::Tokens;
    RECUR_RETURN_IF_ERROR(
        o.Int("vocab_size", IntRule::kPositive, std::nullopt, &model->vocab_size));
  } else {
    model->input_kind = fb::InputKind::Frames;
    RECUR_RETURN_IF_ERROR(o.Int("size", IntRule::kPositive, std::nullopt, &model->input_size));
  }
  return o.CheckNoUnknownKeys();
}

Status ParseOutput(const Json* v, fb::ModelT* model) {
  Json logits = {{"kind", "logits"}};
  if (v == nullptr) v = &logits;
  if (!v->is_object()) return InvalidArgument("output: expected an object, got " + Shown(*v));
  ObjectReader o(*v, "output");
  std::string kind;
  RECUR_RETURN_IF_ERROR(o.Enum("kind", {"logits", "features"}, std::nullopt, &kind));
  if (kind == "logits") {
    model->output_kind = fb::OutputKind::Logits;
    // Token models take the vocabulary from the input; frame models (e.g. CTC) name it here.
    const bool tokens = model->input_kind == fb::InputKind::Tokens;
    int32_t vocab = 0;
    RECUR_RETURN_IF_ERROR(o.Int("vocab_size", IntRule::kPositive,
                                tokens ? std::optional<int64_t>(model->vocab_size) : std::nullopt,
                                &vocab));
    if (tokens && vocab != model->vocab_size) {
      return o.Error("vocab_size", std::to_string(vocab) + " differs from input.vocab_size (" +
                                       std::to_string(model->vocab_size) + ")");
    }
    model->vocab_size = vocab;
    model->output_size = vocab;
  } else {
    model->output_kind = fb::OutputKind::Features;
    RECUR_RETURN_IF_ERROR(o.Int("size", IntRule::kPositive, std::nullopt, &model->output_size));
  }
  return o.CheckNoUnknownKeys();
}

Status ParseTokenizer(const Json* v, fb::ModelT* model) {
  if (v == nullptr) return Status::Ok();
  if (!v->is_object()) {
    return InvalidArgument("tokenizer: expected an object like {\"kind\": \"bytes\"}, got " +
                           Shown(*v));
  }
  ObjectReader o(*v, "tokenizer");
  std::string kind;
  RECUR_RETURN_IF_ERROR(o.Enum("kind", {"bytes", "none", "bpe"}, std::nullopt, &kind));
  if (kind == "bpe") {
    return Unsupported(
        "tokenizer.kind: BPE tokenizers come from a Hugging Face tokenizer.json, which native "
        "specs do not read yet; use \"bytes\" or \"none\"");
  }
  auto t = std::make_unique<fb::TokenizerT>();
  t->kind = kind == "bytes" ? fb::TokenizerKind::Bytes : fb::TokenizerKind::None;
  RECUR_RETURN_IF_ERROR(o.Int("bos_id", IntRule::kAtLeastMinusOne, -1, &t->bos_id));
  RECUR_RETURN_IF_ERROR(o.Int("eos_id", IntRule::kAtLeastMinusOne, -1, &t->eos_id));
  RECUR_RETURN_IF_ERROR(o.Int("pad_id", IntRule::kAtLeastMinusOne, -1, &t->pad_id));
  RECUR_RETURN_IF_ERROR(o.Int("unk_id", IntRule::kAtLeastMinusOne, -1, &t->unk_id));
  RECUR_RETURN_IF_ERROR(o.CheckNoUnknownKeys());
  if (kind != "none") model->tokenizer = std::move(t);
  return Status::Ok();
}

Status ParseMetadata(const Json* v, fb::ModelT* model) {
  if (v == nullptr) return Status::Ok();
  if (!v->is_object()) return InvalidArgument("metadata: expected an object of strings");
  const std::vector<std::string>& reserved = ReservedMetadataKeys();
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string path = "metadata." + it.key();
    if (it.key().empty()) return InvalidArgument("metadata: empty key");
    if (std::find(reserved.begin(), reserved.end(), it.key()) != reserved.end()) {
      return InvalidArgument(path + ": reserved (the converter writes it)");
    }
    if (!it.value().is_string()) {
      return InvalidArgument(path + ": expected a string, got " + Shown(it.value()));
    }
    auto kv = std::make_unique<fb::KeyValueT>();
    kv->key = it.key();
    kv->value = it.value().get<std::string>();
    model->metadata.push_back(std::move(kv));
  }
  return Status::Ok();
}

// Parses JSON, refusing duplicate keys in any object: with nlohmann the last would silently win,
// which hides exactly the kind of mistake strict parsing is for.
Status ParseStrictJson(std::string_view text, Json* out) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  std::string duplicate_parent;
  try {
    *out = Json::parse(
        text.begin(), text.end(), [&](int depth, Json::parse_event_t event, Json& parsed) {
          CheckJsonDepth(depth);
          if (event == Json::parse_event_t::object_start) {
            keys.emplace_back();
          } else if (event == Json::parse_event_t::object_end) {
            if (!keys.empty()) keys.pop_back();
          } else if (event == Json::parse_event_t::key && !keys.empty() && parsed.is_string()) {
            if (!keys.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
              duplicate = parsed.get<std::string>();
            }
          }
          return true;
        });
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("not valid JSON: ") + e.what());
  } catch (...) {
    return InvalidArgument("not valid JSON");
  }
  if (!duplicate.empty()) return InvalidArgument("key \"" + duplicate + "\" appears twice");
  return Status::Ok();
}

Status ParseTopLevel(const Json& root, const std::string& spec_path, NativeSpec* spec) {
  if (!root.is_object()) return InvalidArgument("expected a JSON object at the top level");
  // Point people who pass a Hugging Face or index file here at the right input.
  if (root.contains("weight_map")) {
    return InvalidArgument(
        "this is a safetensors index, not a native spec; name it in a spec's \"weights\"");
  }
  if (!root.contains("layers") && (root.contains("model_type") || root.contains("architectures"))) {
    return InvalidArgument(
        "this looks like a Hugging Face config.json, not a native spec; pass its directory");
  }
  ObjectReader o(root, "");
  fb::ModelT& model = spec->model;
  model.format_version = kRecurFormatVersion;

  std::string format;
  RECUR_RETURN_IF_ERROR(o.String("format", std::string(kNativeSpecFormat), &format));
  if (format != kNativeSpecFormat) {
    return o.Error("format",
                   "expected \"" + std::string(kNativeSpecFormat) + "\", got \"" + format + "\"");
  }
  int32_t version = 1;
  RECUR_RETURN_IF_ERROR(o.Int("version", IntRule::kPositive, 1, &version));
  if (version > kNativeSpecVersion) {
    return Unsupported("version: spec version " + std::to_string(version) +
                       " is newer than this build reads (" + std::to_string(kNativeSpecVersion) +
                       ")");
  }
  RECUR_RETURN_IF_ERROR(
      o.Enum("architecture", NativeSpecArchitectures(), "spec", &model.architecture));
  RECUR_RETURN_IF_ERROR(o.Int("d_model", IntRule::kPositive, std::nullopt, &model.d_model));
  RECUR_RETURN_IF_ERROR(ParseInput(o.Find("input"), &model));
  RECUR_RETURN_IF_ERROR(ParseOutput(o.Find("output"), &model));
  RECUR_RETURN_IF_ERROR(o.Bool("tie_embeddings", false, &model.tie_embeddings));
  if (model.tie_embeddings &&
      (model.input_kind != fb::InputKind::Tokens || model.output_kind != fb::OutputKind::Logits)) {
    return o.Error("tie_embeddings",
                   "needs tokens input and logits output (the head reuses embed.weight)");
  }
  RECUR_RETURN_IF_ERROR(
      ParseNorm(o.Find("final_norm"), "final_norm", &model.final_norm, &model.final_norm_eps));
  RECUR_RETURN_IF_ERROR(ParseLayers(o.Find("layers"), &model));
  RECUR_RETURN_IF_ERROR(ParseTokenizer(o.Find("tokenizer"), &model));
  RECUR_RETURN_IF_ERROR(ParseMetadata(o.Find("metadata"), &model));
  std::string weights;
  RECUR_RETURN_IF_ERROR(o.String("weights", std::string("model.safetensors"), &weights));
  if (weights.empty()) return o.Error("weights", "expected a file name, got \"\"");
  RECUR_RETURN_IF_ERROR(o.CheckNoUnknownKeys());

  const fs::path weights_path(weights);
  spec->weights = weights_path.is_absolute()
                      ? weights
                      : (fs::path(spec_path).parent_path() / weights_path).string();
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>& NativeSpecBlockKinds() {
  static const std::vector<std::string> kKinds = {
      "mamba1", "mamba2", "rwkv", "hippo", "s4d", "linear_attention", "softmax_attention",
      "mlp",    "glu",    "pool"};
  return kKinds;
}

const std::vector<std::string>& NativeSpecArchitectures() {
  static const std::vector<std::string> kArchitectures = {"spec",
                                                          "hybrid",
                                                          "mamba1",
                                                          "mamba2",
                                                          "rwkv4",
                                                          "rwkv5",
                                                          "rwkv6",
                                                          "rwkv7",
                                                          "hippo",
                                                          "s4d",
                                                          "linear_attention",
                                                          "softmax_attention",
                                                          "mlp"};
  return kArchitectures;
}

const std::vector<std::string>& ReservedMetadataKeys() {
  static const std::vector<std::string> kReserved = {"source", "source_kind", "converter", "dtype"};
  return kReserved;
}

Result<NativeSpec> ParseNativeSpec(std::string_view text, const std::string& spec_path) {
  NativeSpec spec;
  Status s = [&]() -> Status {
    Json root;
    RECUR_RETURN_IF_ERROR(ParseStrictJson(text, &root));
    try {
      return ParseTopLevel(root, spec_path, &spec);
    } catch (const std::exception& e) {
      // The readers check types before every get<>(); this keeps a surprise from escaping.
      return Internal(std::string("unexpected JSON error: ") + e.what());
    }
  }();
  if (!s.ok()) return s.Prepend(spec_path + ": ");
  return spec;
}

Result<NativeSpec> LoadNativeSpec(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    if (!fs::exists(path, ec)) return NotFound(path + ": no such file");
    return IoError(path + ": cannot read: " + ec.message());
  }
  if (size > kMaxSpecBytes) {
    return InvalidArgument(path + ": " + std::to_string(size) +
                           " bytes is far too large for a spec (weights go in safetensors)");
  }
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return IoError(path + ": cannot open");
  std::string text(static_cast<size_t>(size), '\0');
  const size_t n = std::fread(text.data(), 1, text.size(), f);
  std::fclose(f);
  if (n != text.size()) return IoError(path + ": short read");
  return ParseNativeSpec(text, path);
}

}  // namespace recur
