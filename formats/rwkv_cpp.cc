// rwkv.cpp files -> .recur (formats/rwkv_cpp.h; docs/rwkv.md).
#include "formats/rwkv_cpp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <utility>

#include "formats/block_tensors.h"
#include "formats/dtype_convert.h"
#include "formats/recur_writer.h"
#include "formats/row_fill.h"

namespace recur {
namespace {

namespace fs = std::filesystem;

constexpr size_t kHeaderBytes = 24;
// Names in these files are like "blocks.11.att.time_decay_w1"; this bounds what a corrupt
// length field can make us read.
constexpr int32_t kMaxNameBytes = 1024;
// rwkv.cpp's eps for LayerNorm (ln0, ln1, ln2, ln_out), as in the official code.
constexpr float kLayerNormEps = 1e-5f;
// ln_x's GroupNorm eps in BlinkDL's code for v5 (64e-5 = 1e-5 x head_size_divisor^2), v6, v7.
constexpr float kOfficialGroupNormEps = 64e-5f;
// Log-domain parameters are clamped here, so that a decay stored as exactly 1 or 0 (or a bonus
// of exactly 0) gives a finite parameter that maps back to the same stored value.
constexpr double kLogClamp = 88.0;

const char* TypeName(int32_t type) {
  static const char* const kNames[] = {"FP32",  "FP16",  "Q4_0", "Q4_1", "Q4_1_O", "Q4_2",
                                       "Q4_3",  "Q5_0",  "Q5_1", "Q8_0", "Q8_1",   "Q2_K",
                                       "Q3_K",  "Q4_K",  "Q5_K", "Q6_K", "Q8_K"};
  return type >= 0 && type <= 16 ? kNames[type] : "unknown";
}

int32_t LoadI32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return static_cast<int32_t>(v);
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<int64_t> Squeezed(const std::vector<int64_t>& shape) {
  std::vector<int64_t> out;
  for (int64_t d : shape) {
    if (d != 1) out.push_back(d);
  }
  return out;
}

float ClampedLog(double x) {
  const double l = x > 0.0 ? std::log(x) : -kLogClamp;
  return static_cast<float>(std::clamp(l, -kLogClamp, kLogClamp));
}

// One canonical tensor: straight from a record, or computed (owned).
struct Canonical {
  const ExpectedTensor* expected = nullptr;
  const RwkvCppTensor* source = nullptr;
  std::vector<float> owned;
  DType dtype = DType::kF32;  // As stored.
};

// The values of `c` as f32 rows of `cols` into `row` (row r), from either source.
Status RowOf(const Canonical& c, size_t r, size_t cols, float* row) {
  if (c.source == nullptr) {
    std::memcpy(row, c.owned.data() + r * cols, cols * sizeof(float));
    return Status::Ok();
  }
  const DType src = c.source->type == 1 ? DType::kF16 : DType::kF32;
  return ConvertRow(src, c.source->data + r * cols * DTypeSize(src), DType::kF32, row, cols);
}

Status AddMeta(fb::ModelT& model, const std::string& key, const std::string& value) {
  for (const auto& kv : model.metadata) {
    if (kv && kv->key == key) return InvalidArgument("metadata key '" + key + "' is set twice");
  }
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = key;
  kv->value = value;
  model.metadata.push_back(std::move(kv));
  return Status::Ok();
}

}  // namespace

int64_t RwkvCppTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> RwkvCppTensor::Values() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  (void)ConvertRow(type == 1 ? DType::kF16 : DType::kF32, data, DType::kF32, v.data(), v.size());
  return v;
}

const RwkvCppTensor* RwkvCppFile::Find(const std::string& name) const {
  for (const RwkvCppTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<RwkvCppFile> ParseRwkvCpp(std::vector<std::byte> bytes, std::string path) {
  RwkvCppFile f;
  f.path = std::move(path);
  f.bytes = std::move(bytes);
  const std::byte* p = f.bytes.data();
  const size_t size = f.bytes.size();
  if (size < kHeaderBytes) {
    return InvalidArgument(f.path + ": " + std::to_string(size) +
                           " bytes, shorter than rwkv.cpp's 24-byte header");
  }
  const uint32_t magic = static_cast<uint32_t>(LoadI32(p));
  if (magic != kRwkvCppFileMagic) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%08x", magic);
    return InvalidArgument(f.path + ": bad magic " + hex +
                           "; an rwkv.cpp file starts with 0x67676d66 ('ggmf')");
  }
  f.file_version = static_cast<uint32_t>(LoadI32(p + 4));
  f.n_vocab = LoadI32(p + 8);
  f.n_embed = LoadI32(p + 12);
  f.n_layer = LoadI32(p + 16);
  f.data_type = LoadI32(p + 20);
  if (f.file_version != 100 && f.file_version != 101) {
    return Unsupported(f.path + ": rwkv.cpp file version " + std::to_string(f.file_version) +
                       " (supported: 100 and 101)");
  }
  if (f.n_vocab <= 0 || f.n_embed <= 0 || f.n_layer <= 0) {
    return InvalidArgument(f.path + ": header has n_vocab " + std::to_string(f.n_vocab) +
                           ", n_embed " + std::to_string(f.n_embed) + ", n_layer " +
                           std::to_string(f.n_layer) + "; all must be positive");
  }
  std::set<std::string, std::less<>> seen;
  size_t at = kHeaderBytes;
  while (at < size) {
    const std::string where = f.path + ": tensor record " + std::to_string(f.tensors.size()) +
                              " at byte " + std::to_string(at);
    if (size - at < 12) return InvalidArgument(where + ": truncated record header");
    const int32_t n_dims = LoadI32(p + at);
    const int32_t name_len = LoadI32(p + at + 4);
    const int32_t type = LoadI32(p + at + 8);
    at += 12;
    if (n_dims < 1 || n_dims > 3) {
      return InvalidArgument(where + ": n_dims " + std::to_string(n_dims) + " (must be 1, 2 or 3)");
    }
    if (name_len <= 0 || name_len > kMaxNameBytes) {
      return InvalidArgument(where + ": name length " + std::to_string(name_len) +
                             " (must be 1.." + std::to_string(kMaxNameBytes) + ")");
    }
    if (size - at < static_cast<size_t>(n_dims) * 4 + static_cast<size_t>(name_len)) {
      return InvalidArgument(where + ": truncated dims or name");
    }
    RwkvCppTensor t;
    t.type = type;
    uint64_t numel = 1;
    for (int32_t i = 0; i < n_dims; ++i) {
      const int32_t d = LoadI32(p + at + 4 * i);
      if (d <= 0) {
        return InvalidArgument(where + ": dimension " + std::to_string(i) + " is " +
                               std::to_string(d) + " (must be positive)");
      }
      numel *= static_cast<uint64_t>(d);
      if (numel > (uint64_t{1} << 40)) return InvalidArgument(where + ": absurdly large tensor");
      t.shape.insert(t.shape.begin(), d);  // ggml's innermost-first -> PyTorch order.
    }
    at += static_cast<size_t>(n_dims) * 4;
    t.name.assign(reinterpret_cast<const char*>(p + at), static_cast<size_t>(name_len));
    at += static_cast<size_t>(name_len);
    const std::string named = where + " ('" + t.name + "')";
    if (type != 0 && type != 1) {
      return Unsupported(named + " is " + TypeName(type) + " (type " + std::to_string(type) +
                         "); only FP32 and FP16 rwkv.cpp files can be imported, convert the "
                         "FP32 or FP16 file instead");
    }
    t.size = static_cast<size_t>(numel) * (type == 0 ? 4 : 2);
    if (size - at < t.size) {
      return InvalidArgument(named + ": " + std::to_string(t.size) + " bytes of " +
                             TypeName(type) + " data " + ShapeText(t.shape) + " expected, " +
                             std::to_string(size - at) + " left in the file (truncated?)");
    }
    t.data = p + at;
    at += t.size;
    if (!seen.insert(t.name).second) {
      return InvalidArgument(named + ": tensor name appears twice");
    }
    f.tensors.push_back(std::move(t));
  }
  if (f.tensors.empty()) return InvalidArgument(f.path + ": no tensor records after the header");
  return f;
}

Result<RwkvCppFile> ReadRwkvCpp(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return NotFound(path + ": cannot read (" + ec.message() + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open");
  std::vector<std::byte> bytes(static_cast<size_t>(size));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (!in) return IoError(path + ": read failed");
  return ParseRwkvCpp(std::move(bytes), path);
}

RwkvCppVersion DetectRwkvCppVersion(const RwkvCppFile& file) {
  if (file.Find("blocks.0.att.r_k") != nullptr) return {7, 0};
  if (file.Find("blocks.0.att.time_maa_x") != nullptr) return {6, 0};
  if (file.Find("blocks.0.att.ln_x.weight") != nullptr) {
    return {5, file.Find("blocks.0.att.gate.weight") != nullptr ? 2 : 1};
  }
  return {4, 0};
}

Result<ConvertReport> ConvertRwkvCpp(const ConvertOptions& options,
                                     const RwkvImportOptions& rwkv) {
  RECUR_ASSIGN_OR_RETURN(RwkvCppFile file, ReadRwkvCpp(options.source));
  const std::string& path = file.path;
  const DType target = options.dtype.value_or(DType::kF32);
  const RwkvCppVersion version = DetectRwkvCppVersion(file);
  const int64_t C = file.n_embed;

  // Dimensions from the tensors (each is checked again against the canonical shape below).
  const auto need = [&](const std::string& name) -> Result<const RwkvCppTensor*> {
    const RwkvCppTensor* t = file.Find(name);
    if (t == nullptr) {
      return NotFound(path + ": tensor '" + name + "' is missing (an rwkv.cpp v" +
                      std::to_string(version.version) + " file has it)");
    }
    return t;
  };
  const auto dim0 = [](const RwkvCppTensor* t) { return t->shape.empty() ? 0 : t->shape[0]; };
  int64_t n_heads = 0, head_size = 0;
  if (version.version == 5 || version.version == 6) {
    RECUR_ASSIGN_OR_RETURN(const RwkvCppTensor* td, need("blocks.0.att.time_decay"));
    n_heads = version.version == 5 ? dim0(td) : 0;
    if (version.version == 6) {
      RECUR_ASSIGN_OR_RETURN(const RwkvCppTensor* tf, need("blocks.0.att.time_faaaa"));
      n_heads = dim0(tf);
    }
  } else if (version.version == 7) {
    RECUR_ASSIGN_OR_RETURN(const RwkvCppTensor* rk, need("blocks.0.att.r_k"));
    n_heads = dim0(rk);
  }
  if (version.version >= 5) {
    if (n_heads <= 0 || C % n_heads != 0) {
      return InvalidArgument(path + ": n_embed " + std::to_string(C) +
                             " is not a multiple of the head count " + std::to_string(n_heads));
    }
    head_size = C / n_heads;
  }
  RECUR_ASSIGN_OR_RETURN(const RwkvCppTensor* ffn_key, need("blocks.0.ffn.key.weight"));
  const int64_t d_ffn = dim0(ffn_key);

  fb::ModelT model;
  model.architecture = "rwkv" + std::to_string(version.version);
  model.d_model = static_cast<int32_t>(C);
  model.input_kind = fb::InputKind::Tokens;
  model.vocab_size = file.n_vocab;
  model.output_kind = fb::OutputKind::Logits;
  model.output_size = file.n_vocab;
  model.tie_embeddings = false;
  model.final_norm = fb::NormKind::LayerNorm;
  model.final_norm_eps = kLayerNormEps;
  for (int32_t i = 0; i < file.n_layer; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    const auto rows_of = [&](const std::string& name) -> int32_t {
      const RwkvCppTensor* t = file.Find(b + name);
      return t == nullptr ? 0 : static_cast<int32_t>(dim0(t));
    };
    fb::RwkvSpecT s;
    s.version = version.version;
    s.minor = version.minor;
    s.n_heads = static_cast<int32_t>(n_heads);
    s.head_size = static_cast<int32_t>(head_size);
    s.d_ffn = static_cast<int32_t>(d_ffn);
    s.group_norm_eps = rwkv.group_norm_eps.value_or(kOfficialGroupNormEps);
    if (version.version == 6) {
      s.lora_mix = rows_of("att.time_maa_w1") / 5;
      s.lora_decay = rows_of("att.time_decay_w1");
    } else if (version.version == 7) {
      s.lora_decay = rows_of("att.w1");
      s.lora_a = rows_of("att.a1");
      s.lora_v = rows_of("att.v1");
      s.lora_g = rows_of("att.g1");
    }
    auto layer = std::make_unique<fb::LayerT>();
    layer->block.Set(std::move(s));
    layer->norm = fb::NormKind::None;
    layer->norm_eps = kLayerNormEps;
    layer->residual = true;
    model.layers.push_back(std::move(layer));
  }
  auto tokenizer = std::make_unique<fb::TokenizerT>();
  tokenizer->kind = fb::TokenizerKind::Bytes;
  model.tokenizer = std::move(tokenizer);

  Result<std::vector<ExpectedTensor>> expected_or = ExpectedTensorsOf(model);
  if (!expected_or.ok()) {
    Status s = expected_or.status();
    return s.Prepend(path + ": ");
  }
  const std::vector<ExpectedTensor>& expected = *expected_or;

  // Each canonical tensor from its record(s), undoing the converter's transformations.
  ConvertReport report;
  report.source_kind = SourceKind::kRwkvCpp;
  report.architecture = model.architecture;
  report.weights = path;
  std::set<std::string, std::less<>> used;
  std::vector<std::string> problems;
  std::vector<Canonical> plan;
  plan.reserve(expected.size());
  for (const ExpectedTensor& e : expected) {
    Canonical c;
    c.expected = &e;
    std::string source_name;
    // How the stored values map back to the official parameter (identity when empty).
    std::function<Status(const RwkvCppTensor&, std::vector<float>*)> transform;
    const size_t numel = [&] {
      size_t n = 1;
      for (int64_t d : e.shape) n *= static_cast<size_t>(d);
      return n;
    }();
    if (e.name == "embed.weight") {
      source_name = "emb.weight";
      // ln0 folded into the embedding rows, as BlinkDL's own inference code does at load: the
      // runtime's residual stream then starts at ln0(emb[token]) exactly as the model defines.
      transform = [&](const RwkvCppTensor& t, std::vector<float>* out) -> Status {
        const RwkvCppTensor* w = file.Find("blocks.0.ln0.weight");
        const RwkvCppTensor* bias = file.Find("blocks.0.ln0.bias");
        if (w == nullptr || bias == nullptr || w->numel() != C || bias->numel() != C) {
          return NotFound("blocks.0.ln0.weight / .bias of [" + std::to_string(C) +
                          "] are missing or misshapen");
        }
        used.insert(w->name);
        used.insert(bias->name);
        const std::vector<float> wv = w->Values(), bv = bias->Values();
        *out = t.Values();
        for (size_t r = 0; r < out->size() / C; ++r) {
          float* x = out->data() + r * C;
          double mean = 0.0, var = 0.0;
          for (int64_t j = 0; j < C; ++j) mean += x[j];
          mean /= static_cast<double>(C);
          for (int64_t j = 0; j < C; ++j) var += (x[j] - mean) * (x[j] - mean);
          var /= static_cast<double>(C);
          const double rstd = 1.0 / std::sqrt(var + kLayerNormEps);
          for (int64_t j = 0; j < C; ++j) {
            x[j] = static_cast<float>((x[j] - mean) * rstd * wv[j] + bv[j]);
          }
        }
        return Status::Ok();
      };
    } else if (e.name == "norm_f.weight" || e.name == "norm_f.bias") {
      source_name = "ln_out" + e.name.substr(6);
    } else if (e.name == "head.weight") {
      source_name = "head.weight";
    } else if (e.name.rfind("layers.", 0) == 0) {
      const size_t dot = e.name.find('.', 7);
      const std::string layer = e.name.substr(7, dot - 7);
      const std::string rest = e.name.substr(dot + 1);
      source_name = "blocks." + layer + "." + rest;
      const int v = version.version;
      if (v == 7 && rest.size() == 7 && rest.rfind("att.x_", 0) == 0) {
        // att.x_rwkvag: rows r, w, k, v, a, g of one (6, 1, C) tensor.
        const size_t row = std::string("rwkvag").find(rest[6]);
        source_name = "blocks." + layer + ".att.x_rwkvag";
        transform = [row, C](const RwkvCppTensor& t, std::vector<float>* out) -> Status {
          if (t.numel() != 6 * C) {
            return InvalidArgument("expected 6 x " + std::to_string(C) + " values, found " +
                                   ShapeText(t.shape));
          }
          const std::vector<float> all = t.Values();
          out->assign(all.begin() + row * C, all.begin() + (row + 1) * C);
          return Status::Ok();
        };
      } else if (v == 6 && rest == "att.time_decay") {
        // Stored raw, reshaped from (1, 1, C) to (H, S, 1): the same values in the same order.
        transform = [](const RwkvCppTensor& t, std::vector<float>* out) -> Status {
          *out = t.Values();
          return Status::Ok();
        };
      } else if (v == 4 && rest == "att.time_decay") {
        // Stored -exp(w).
        transform = [](const RwkvCppTensor& t, std::vector<float>* out) -> Status {
          *out = t.Values();
          for (float& x : *out) {
            if (!(x <= 0.0f)) {
              return InvalidArgument("a v4 time_decay is stored as -exp(w) <= 0, found " +
                                     std::to_string(x));
            }
            x = ClampedLog(-static_cast<double>(x));
          }
          return Status::Ok();
        };
      } else if (v == 5 && rest == "att.time_decay") {
        // Stored exp(-exp(w)).
        transform = [](const RwkvCppTensor& t, std::vector<float>* out) -> Status {
          *out = t.Values();
          for (float& x : *out) {
            if (!(x >= 0.0f && x <= 1.0f)) {
              return InvalidArgument("a v5 time_decay is stored as exp(-exp(w)) in [0, 1], found " +
                                     std::to_string(x));
            }
            const double l = x > 0.0f ? -std::log(static_cast<double>(x)) : 0.0;
            x = x > 0.0f ? ClampedLog(l) : static_cast<float>(kLogClamp);
          }
          return Status::Ok();
        };
      } else if (v == 5 && rest == "att.time_first") {
        // v5.1: stored exp(u).
        transform = [](const RwkvCppTensor& t, std::vector<float>* out) -> Status {
          *out = t.Values();
          for (float& x : *out) {
            if (!(x >= 0.0f) || !std::isfinite(x)) {
              return InvalidArgument("a v5.1 time_first is stored as exp(u) >= 0, found " +
                                     std::to_string(x));
            }
            x = ClampedLog(x);
          }
          return Status::Ok();
        };
      }
    } else {
      problems.push_back("internal: no source for canonical tensor '" + e.name + "'");
      continue;
    }

    const RwkvCppTensor* t = file.Find(source_name);
    if (t == nullptr) {
      problems.push_back("tensor '" + source_name + "' (for '" + e.name + "' " +
                         ShapeText(e.shape) + ") is missing");
      continue;
    }
    used.insert(source_name);
    if (transform) {
      Status s = transform(*t, &c.owned);
      if (!s.ok()) {
        problems.push_back("tensor '" + source_name + "': " + s.message());
        continue;
      }
      if (c.owned.size() != numel) {
        problems.push_back("tensor '" + source_name + "': expected " + std::to_string(numel) +
                           " values for '" + e.name + "' " + ShapeText(e.shape) + ", found " +
                           ShapeText(t->shape));
        continue;
      }
    } else {
      if (Squeezed(t->shape) != Squeezed(e.shape)) {
        problems.push_back("tensor '" + source_name + "': expected shape " + ShapeText(e.shape) +
                           " (size-1 dimensions aside), found " + ShapeText(t->shape));
        continue;
      }
      c.source = t;
    }
    c.dtype = DType::kF32;
    if (e.matrix) {
      c.dtype = target;
      if (target == DType::kQ8_0 && e.shape.back() % kQ8BlockSize != 0) {
        c.dtype = DType::kF16;
        report.fallbacks.push_back(e.name + ": last dimension " + std::to_string(e.shape.back()) +
                                   " is not a multiple of " + std::to_string(kQ8BlockSize) +
                                   "; stored as f16");
      }
    }
    plan.push_back(std::move(c));
  }
  if (!problems.empty()) {
    std::string message = path + ": " + std::to_string(problems.size()) +
                          (problems.size() == 1 ? " problem" : " problems") +
                          " with this rwkv.cpp v" + std::to_string(version.version) + " file:";
    for (size_t i = 0; i < problems.size() && i < 20; ++i) message += "\n  " + problems[i];
    if (problems.size() > 20) {
      message += "\n  ... and " + std::to_string(problems.size() - 20) + " more";
    }
    return InvalidArgument(message);
  }
  for (const RwkvCppTensor& t : file.tensors) {
    if (used.find(t.name) == used.end()) report.unused_source_tensors.push_back(t.name);
  }
  std::sort(report.unused_source_tensors.begin(), report.unused_source_tensors.end());
  if (options.warning) {
    for (const std::string& f : report.fallbacks) options.warning("q8_0 fallback: " + f);
    if (!report.unused_source_tensors.empty()) {
      std::string line = std::to_string(report.unused_source_tensors.size()) +
                         " source tensor(s) not used:";
      for (const std::string& name : report.unused_source_tensors) line += " " + name;
      options.warning(line);
    }
  }

  RECUR_RETURN_IF_ERROR(AddMeta(model, "source", fs::path(path).filename().string()));
  RECUR_RETURN_IF_ERROR(AddMeta(model, "source_kind", "rwkv.cpp"));
  RECUR_RETURN_IF_ERROR(AddMeta(model, "converter", kConverterVersion));
  RECUR_RETURN_IF_ERROR(AddMeta(model, "dtype", std::string(DTypeName(target))));
  RECUR_RETURN_IF_ERROR(
      AddMeta(model, "rwkv.cpp.file_version", std::to_string(file.file_version)));
  for (const auto& [key, value] : options.metadata) {
    RECUR_RETURN_IF_ERROR(AddMeta(model, key, value));
  }

  RecurWriter writer(std::move(model));
  for (const Canonical& c : plan) {
    const ExpectedTensor& e = *c.expected;
    const Canonical* cp = &c;
    const size_t cols = e.shape.empty() ? 1 : static_cast<size_t>(e.shape.back());
    RECUR_ASSIGN_OR_RETURN(
        uint64_t bytes,
        AddTensorFromRows(writer, e.name, e.shape, c.dtype, options.q8_scale_dtype, [cp, cols] {
          return [cp, cols](size_t r, float* row) { return RowOf(*cp, r, cols, row); };
        }));
    report.bytes_by_dtype[static_cast<int>(c.dtype)] += bytes;
    ++report.tensors_written;
  }
  RECUR_RETURN_IF_ERROR(writer.Write(options.output, options.progress));
  std::error_code ec;
  report.file_bytes = fs::file_size(options.output, ec);
  return report;
}

}  // namespace recur
