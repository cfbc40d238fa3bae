#include "formats/convert.h"

#include "formats/hf_common.h"
#include "formats/hf_mamba.h"
#include "formats/hf_mamba2.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "flatbuffers/flatbuffers.h"
#include "formats/dtype_convert.h"
#include "formats/native_spec.h"
#include "formats/recur_file.h"
#include "formats/rwkv_cpp.h"
#include "formats/safetensors.h"
#include "formats/tokenizer_json.h"
#include "formats/json_limits.h"

namespace recur {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// rwkv.cpp's file magic, 'ggmf' as a little-endian u32 (bytes 66 6d 67 67 on disk).
constexpr uint32_t kRwkvCppMagic = 0x67676d66;
// Older ggml/llama.cpp magics, recognised only to say that they are not rwkv.cpp files.
constexpr uint32_t kGgmlMagic = 0x67676d6c;  // 'ggml'
constexpr uint32_t kGgjtMagic = 0x67676a74;  // 'ggjt'
// A config.json is a few KB; this bounds what a wrong path can make us read.
constexpr uintmax_t kMaxConfigBytes = 16ull << 20;
// How many problems one error message lists before summarising the rest.
constexpr size_t kMaxListedProblems = 20;

const char* kAcceptedSources =
    "recur convert takes a Hugging Face model directory (config.json + safetensors), a native "
    "spec .json file (docs/native-spec.md) or an rwkv.cpp .bin file";

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    const char a = s[s.size() - suffix.size() + i];
    const char lower = (a >= 'A' && a <= 'Z') ? static_cast<char>(a - 'A' + 'a') : a;
    if (lower != suffix[i]) return false;
  }
  return true;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A JSON value for a message: short, and never throwing on invalid UTF-8.
std::string Shown(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

std::vector<int64_t> Squeezed(const std::vector<int64_t>& shape) {
  std::vector<int64_t> out;
  for (int64_t d : shape) {
    if (d != 1) out.push_back(d);
  }
  return out;
}

// The first `n` bytes of a file (fewer when it is shorter).
std::string ReadPrefix(const std::string& path, size_t n) {
  std::string bytes(n, '\0');
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return {};
  bytes.resize(std::fread(bytes.data(), 1, n, f));
  std::fclose(f);
  return bytes;
}

uint32_t LoadU32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

// The directory of a Hugging Face source given as a directory or as its config.json.
std::string HfDirectory(const std::string& source) {
  std::error_code ec;
  if (fs::is_directory(source, ec)) return source;
  const fs::path parent = fs::path(source).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

std::string BaseName(const std::string& path) {
  fs::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "dir/" -> "dir".
  const std::string name = p.filename().string();
  return name.empty() ? path : name;
}

// What the importers produce before tensors are matched: the model, where its tensors are and
// what the canonical names are called there.
struct Source {
  fb::ModelT model;
  std::unique_ptr<TensorStore> store;
  std::map<std::string, std::string> source_names;
};

Result<Source> OpenNativeSpec(const ConvertOptions& options) {
  RECUR_ASSIGN_OR_RETURN(NativeSpec spec, LoadNativeSpec(options.source));
  Source source;
  source.model = std::move(spec.model);
  Result<std::unique_ptr<TensorStore>> store = TensorStore::Open(spec.weights, options.use_mmap);
  if (!store.ok()) {
    Status s = store.status();
    return s.Prepend(options.source + ": \"weights\": ");
  }
  source.store = std::move(store).value();
  return source;
}

Result<Source> OpenHuggingFace(const ConvertOptions& options,
                               const std::vector<HfArchitecture>& extra) {
  const std::string dir = HfDirectory(options.source);
  RECUR_ASSIGN_OR_RETURN(HfConfig config, HfConfig::Load((fs::path(dir) / "config.json").string()));
  const std::vector<std::string> architectures = config.architectures();
  const std::string model_type = config.model_type();

  const HfArchitecture* found = nullptr;
  for (const std::vector<HfArchitecture>* table : {&extra, &HfArchitectures()}) {
    for (const HfArchitecture& entry : *table) {
      if (found == nullptr && std::find(architectures.begin(), architectures.end(),
                                        entry.architecture) != architectures.end()) {
        found = &entry;
      }
    }
  }
  if (found == nullptr && architectures.empty() && !model_type.empty()) {
    for (const std::vector<HfArchitecture>* table : {&extra, &HfArchitectures()}) {
      for (const HfArchitecture& entry : *table) {
        if (found == nullptr && entry.model_type == model_type) found = &entry;
      }
    }
  }
  // The original state-spaces checkpoints' config.json names neither an architecture nor a
  // model type; their keys (d_model, n_layer, ssm_cfg) identify them.
  HfArchitecture state_spaces;
  if (found == nullptr && architectures.empty() && model_type.empty()) {
    if (IsMamba2StateSpaces(config)) {
      state_spaces = {"MambaLMHeadModel (Mamba-2 layers)", "", MapMamba2StateSpaces};
      found = &state_spaces;
    } else if (IsStateSpacesMambaConfig(config)) {
      state_spaces = {"MambaLMHeadModel", "", MapStateSpacesMamba};
      found = &state_spaces;
    }
  }
  if (found == nullptr) {
    std::string named;
    for (const std::string& a : architectures) named += (named.empty() ? "'" : ", '") + a + "'";
    if (named.empty()) named = "(no \"architectures\")";
    std::string supported;
    for (const std::vector<HfArchitecture>* table : {&extra, &HfArchitectures()}) {
      for (const HfArchitecture& entry : *table) {
        supported += (supported.empty() ? "" : ", ") + entry.architecture;
      }
    }
    return Unsupported(config.path() + ": Hugging Face architecture " + named + " (model_type '" +
                       model_type + "') is not supported by this build yet" +
                       (supported.empty() ? std::string("; no Hugging Face families are built in")
                                          : "; supported: " + supported));
  }

  Result<HfMapping> mapping = found->map(config);
  if (!mapping.ok()) {
    Status s = mapping.status();
    return s.Prepend(found->architecture + ": ");
  }
  Source source;
  source.model = std::move(mapping->model);
  source.source_names = std::move(mapping->source_names);
  RECUR_ASSIGN_OR_RETURN(source.store, TensorStore::Open(dir, options.use_mmap));
  return source;
}

// One tensor to write: where its bytes come from and how they are stored.
struct Planned {
  const ExpectedTensor* expected;
  const SafetensorsTensor* source;
  DType source_dtype;
  DType dtype;  // As stored.
};

// Fills a float tensor by converting straight from the mapped source.
FillFn FloatFill(const SafetensorsTensor* source, DType source_dtype, DType dtype) {
  return [source, source_dtype, dtype](std::span<std::byte> out) -> Status {
    const size_t n = static_cast<size_t>(source->numel());
    if (out.size() != n * DTypeSize(dtype)) {
      return Internal("fill size " + std::to_string(out.size()) +
                      " != " + std::to_string(n * DTypeSize(dtype)));
    }
    return ConvertRow(source_dtype, source->data, dtype, out.data(), n);
  };
}

// Fills the quants (want_quants) or the scales of a q8_0 tensor, quantising row by row. Each
// of the two fills quantises again: that costs little next to the disk and keeps memory at one
// row instead of the whole tensor.
// `cols` is the canonical last dimension: a source may carry extra size-1 dimensions.
FillFn Q8Fill(const SafetensorsTensor* source, DType source_dtype, DType scale_dtype, size_t cols,
              bool want_quants) {
  return [=](std::span<std::byte> out) -> Status {
    const size_t numel = static_cast<size_t>(source->numel());
    const size_t blocks_per_row = cols / kQ8BlockSize;
    const size_t scale_row_bytes = blocks_per_row * DTypeSize(scale_dtype);
    const size_t rows = cols == 0 ? 0 : numel / cols;
    const size_t expected = want_quants ? numel : rows * scale_row_bytes;
    if (out.size() != expected) {
      return Internal("q8_0 fill size " + std::to_string(out.size()) +
                      " != " + std::to_string(expected));
    }
    std::vector<float> row(cols);
    std::vector<int8_t> quants(want_quants ? 0 : cols);
    std::vector<std::byte> scales(want_quants ? scale_row_bytes : 0);
    const size_t source_row_bytes = cols * DTypeSize(source_dtype);
    for (size_t r = 0; r < rows; ++r) {
      RECUR_RETURN_IF_ERROR(ConvertRow(source_dtype, source->data + r * source_row_bytes,
                                       DType::kF32, row.data(), cols));
      int8_t* q = want_quants ? reinterpret_cast<int8_t*>(out.data()) + r * cols : quants.data();
      void* s = want_quants ? static_cast<void*>(scales.data())
                            : static_cast<void*>(out.data() + r * scale_row_bytes);
      Status status = QuantizeQ8Row(row.data(), cols, q, scale_dtype, s);
      if (!status.ok()) return status.Prepend("row " + std::to_string(r) + ": ");
    }
    return Status::Ok();
  };
}

Status AddMetadata(fb::ModelT& model, const std::string& key, const std::string& value) {
  for (const auto& kv : model.metadata) {
    if (kv && kv->key == key) {
      return InvalidArgument("metadata key '" + key + "' is set twice");
    }
  }
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = key;
  kv->value = value;
  model.metadata.push_back(std::move(kv));
  return Status::Ok();
}

Result<ConvertReport> ConvertImpl(const ConvertOptions& options,
                                  const std::vector<HfArchitecture>& extra) {
  if (options.source.empty()) return InvalidArgument("convert: no source given");
  if (options.output.empty()) return InvalidArgument("convert: no output path given");
  const DType target = options.dtype.value_or(DType::kF32);
  if (target != DType::kF32 && target != DType::kF16 && target != DType::kBF16 &&
      target != DType::kQ8_0) {
    return InvalidArgument("convert: --dtype " + std::string(DTypeName(target)) +
                           " is not a weight type; use f32, f16, bf16 or q8_0");
  }
  if (options.q8_scale_dtype != DType::kF16 && options.q8_scale_dtype != DType::kF32) {
    return InvalidArgument("convert: q8_0 scales must be f16 or f32");
  }
  std::error_code ec;
  if (fs::exists(options.output, ec) && fs::exists(options.source, ec) &&
      fs::equivalent(options.output, options.source, ec)) {
    return InvalidArgument("convert: the output " + options.output + " is the source itself");
  }

  RECUR_ASSIGN_OR_RETURN(SourceKind kind, DetectSource(options.source));
  ConvertReport report;
  report.source_kind = kind;
  Source source;
  switch (kind) {
    case SourceKind::kNativeSpec: {
      RECUR_ASSIGN_OR_RETURN(source, OpenNativeSpec(options));
      break;
    }
    case SourceKind::kHuggingFace: {
      RECUR_ASSIGN_OR_RETURN(source, OpenHuggingFace(options, extra));
      break;
    }
    case SourceKind::kRwkvCpp:
      return ConvertRwkvCpp(options);
  }
  report.architecture = source.model.architecture;
  report.weights = source.store->description();

  // The canonical tensor list, then each tensor matched against the checkpoint. Every problem
  // is collected so that one run shows them all.
  Result<std::vector<ExpectedTensor>> expected_or = ExpectedTensorsOf(source.model);
  if (!expected_or.ok()) {
    Status s = expected_or.status();
    return s.Prepend(options.source + ": ");
  }
  const std::vector<ExpectedTensor>& expected = *expected_or;
  std::vector<Planned> plan;
  std::vector<std::string> problems;
  std::set<std::string, std::less<>> used;
  bool any_missing = false;
  for (const ExpectedTensor& e : expected) {
    const auto mapped = source.source_names.find(e.name);
    const std::string& source_name = mapped == source.source_names.end() ? e.name : mapped->second;
    const std::string called = source_name == e.name ? "" : " (looked for '" + source_name + "')";
    const SafetensorsTensor* t = source.store->Find(source_name);
    if (t == nullptr) {
      if (e.optional) continue;
      any_missing = true;
      problems.push_back("tensor '" + e.name + "' " + ShapeString(e.shape) + " is missing" +
                         called);
      continue;
    }
    used.insert(source_name);
    const std::optional<DType> source_dtype = ToDType(t->dtype);
    if (!source_dtype || !IsFloatDType(*source_dtype)) {
      problems.push_back("tensor '" + e.name + "'" + called + " is " +
                         std::string(SafetensorsDTypeName(t->dtype)) + " in " + *t->file +
                         "; weights must be F32, F16, BF16 or F64");
      continue;
    }
    // Sizes of 1 may come and go (PyTorch's conv1d [C, 1, K] is canonical [C, K]); the data
    // layout is the same.
    if (Squeezed(t->shape) != Squeezed(e.shape)) {
      problems.push_back("tensor '" + e.name + "'" + called + ": expected shape " +
                         ShapeString(e.shape) + ", found " + t->ShapeString() + " in " + *t->file);
      continue;
    }
    DType dtype = DType::kF32;
    if (e.matrix) {
      dtype = target;
      if (target == DType::kQ8_0 && (e.shape.empty() || e.shape.back() % kQ8BlockSize != 0)) {
        dtype = DType::kF16;
        report.fallbacks.push_back(
            e.name + ": last dimension " + std::to_string(e.shape.empty() ? 0 : e.shape.back()) +
            " is not a multiple of " + std::to_string(kQ8BlockSize) + "; stored as f16");
      }
    }
    plan.push_back({&e, t, *source_dtype, dtype});
  }
  if (!problems.empty()) {
    std::string message = options.source + ": " + std::to_string(problems.size()) +
                          (problems.size() == 1 ? " problem" : " problems") +
                          " with the weights in " + source.store->description() + ":";
    for (size_t i = 0; i < problems.size() && i < kMaxListedProblems; ++i) {
      message += "\n  " + problems[i];
    }
    if (problems.size() > kMaxListedProblems) {
      message += "\n  ... and " + std::to_string(problems.size() - kMaxListedProblems) + " more";
    }
    return any_missing ? NotFound(message) : InvalidArgument(message);
  }
  for (const std::string& name : source.store->Names()) {
    if (used.find(name) == used.end()) report.unused_source_tensors.push_back(name);
  }
  if (options.warning) {
    for (const std::string& f : report.fallbacks) options.warning("q8_0 fallback: " + f);
    if (!report.unused_source_tensors.empty()) {
      std::string line =
          std::to_string(report.unused_source_tensors.size()) + " source tensor(s) not used:";
      for (const std::string& name : report.unused_source_tensors) line += " " + name;
      options.warning(line);
    }
  }

  // Provenance, then the caller's own metadata.
  fb::ModelT& model = source.model;
  RECUR_RETURN_IF_ERROR(AddMetadata(model, "source", BaseName(options.source)));
  RECUR_RETURN_IF_ERROR(AddMetadata(model, "source_kind", std::string(SourceKindName(kind))));
  RECUR_RETURN_IF_ERROR(AddMetadata(model, "converter", kConverterVersion));
  RECUR_RETURN_IF_ERROR(AddMetadata(model, "dtype", std::string(DTypeName(target))));
  for (const auto& [key, value] : options.metadata) {
    RECUR_RETURN_IF_ERROR(AddMetadata(model, key, value));
  }

  RecurWriter writer(std::move(model));
  for (const Planned& p : plan) {
    const ExpectedTensor& e = *p.expected;
    uint64_t numel = 1;
    for (int64_t d : e.shape) numel *= static_cast<uint64_t>(d);
    if (p.dtype == DType::kQ8_0) {
      const size_t cols = static_cast<size_t>(e.shape.back());  // q8_0 is planned for rank >= 1.
      RECUR_RETURN_IF_ERROR(writer.AddQ8Tensor(
          e.name, e.shape, options.q8_scale_dtype,
          Q8Fill(p.source, p.source_dtype, options.q8_scale_dtype, cols, /*want_quants=*/true),
          Q8Fill(p.source, p.source_dtype, options.q8_scale_dtype, cols, /*want_quants=*/false)));
      report.bytes_by_dtype[static_cast<int>(DType::kQ8_0)] +=
          numel + numel / kQ8BlockSize * DTypeSize(options.q8_scale_dtype);
    } else {
      RECUR_RETURN_IF_ERROR(
          writer.AddTensor(e.name, p.dtype, e.shape, FloatFill(p.source, p.source_dtype, p.dtype)));
      report.bytes_by_dtype[static_cast<int>(p.dtype)] += numel * DTypeSize(p.dtype);
    }
    ++report.tensors_written;
  }
  RECUR_RETURN_IF_ERROR(writer.Write(options.output, options.progress));
  report.file_bytes = fs::file_size(options.output, ec);
  return report;
}

}  // namespace

std::string_view SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kHuggingFace:
      return "huggingface";
    case SourceKind::kNativeSpec:
      return "native-spec";
    case SourceKind::kRwkvCpp:
      return "rwkv.cpp";
  }
  return "unknown";
}

Result<SourceKind> DetectSource(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return NotFound(path + ": no such file or directory");
  if (fs::is_directory(status)) {
    if (fs::exists(fs::path(path) / "config.json", ec)) return SourceKind::kHuggingFace;
    std::string hint;
    for (const char* spec : {"spec.json", "recur.json"}) {
      if (hint.empty() && fs::exists(fs::path(path) / spec, ec)) {
        hint = " (for a native spec, pass the file: " + (fs::path(path) / spec).string() + ")";
      }
    }
    return InvalidArgument(path + ": a directory without config.json; " + kAcceptedSources + hint);
  }
  if (!fs::is_regular_file(status)) return InvalidArgument(path + ": not a regular file");

  const std::string head = ReadPrefix(path, 16);
  if (head.size() >= 4) {
    const uint32_t magic = LoadU32(head, 0);
    if (magic == kRwkvCppMagic) return SourceKind::kRwkvCpp;
    if (head.compare(0, 4, "GGUF") == 0) {
      return Unsupported(path +
                         ": a GGUF file; recur does not read GGUF. Convert from the "
                         "original checkpoint (Hugging Face directory or safetensors + spec)");
    }
    if (magic == kGgmlMagic || magic == kGgjtMagic) {
      return Unsupported(path +
                         ": a legacy ggml/llama.cpp file, not an rwkv.cpp one (magic "
                         "'ggmf'); convert from the original checkpoint");
    }
    if (head.compare(0, 4, "PK\x03\x04") == 0 || static_cast<uint8_t>(head[0]) == 0x80) {
      return Unsupported(path +
                         ": a PyTorch checkpoint (zip/pickle); recur does not unpickle. "
                         "Save the state dict with safetensors and describe it with a native "
                         "spec (docs/native-spec.md)");
    }
  }
  const std::string name = fs::path(path).filename().string();
  if (EndsWithIgnoreCase(name, ".safetensors")) {
    return InvalidArgument(path +
                           ": a bare safetensors file has no model description; write a "
                           "native spec naming it (docs/native-spec.md) or point at a Hugging "
                           "Face directory with config.json");
  }
  if (name == "config.json") return SourceKind::kHuggingFace;
  if (EndsWithIgnoreCase(name, ".json")) return SourceKind::kNativeSpec;
  return InvalidArgument(path + ": not a recognised model source; " + kAcceptedSources);
}

// --- HfConfig ---------------------------------------------------------------------------------

struct HfConfig::Impl {
  Json root;
  std::string path;

  // The value of `key`, or null when absent or JSON null (HF configs write null for "unset").
  const Json* Find(std::string_view key) const {
    const auto it = root.find(std::string(key));
    if (it == root.end() || it->is_null()) return nullptr;
    return &*it;
  }
  Status Error(std::string_view key, const std::string& what) const {
    return InvalidArgument(path + ": \"" + std::string(key) + "\": " + what);
  }
};

// Python's json module writes float("inf") and float("nan") as the bare words Infinity and NaN
// (transformers' Mamba2Config saves "time_step_limit": [0.0, Infinity]), which strict JSON
// parsers refuse. Outside strings they become 1e308 (dt limits only ask "at least 1e30") and null.
std::string PythonJsonToJson(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (text.substr(i, 8) == "Infinity") {
      out += "1e308";
      i += 7;
    } else if (text.substr(i, 3) == "NaN") {
      out += "null";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

Result<HfConfig> HfConfig::Parse(std::string_view text, std::string path) {
  auto impl = std::make_shared<Impl>();
  impl->path = std::move(path);
  try {
    impl->root = ParseJsonBounded(PythonJsonToJson(text));
  } catch (const std::exception& e) {
    return InvalidArgument(impl->path + ": not valid JSON: " + e.what());
  }
  if (!impl->root.is_object()) return InvalidArgument(impl->path + ": not a JSON object");
  return HfConfig(std::move(impl));
}

Result<HfConfig> HfConfig::Load(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return NotFound(path + ": cannot read: " + ec.message());
  if (size > kMaxConfigBytes) return InvalidArgument(path + ": too large for a config.json");
  std::string text = ReadPrefix(path, static_cast<size_t>(size));
  if (text.size() != size) return IoError(path + ": short read");
  return Parse(text, path);
}

const std::string& HfConfig::path() const { return impl_->path; }

bool HfConfig::Has(std::string_view key) const { return impl_->Find(key) != nullptr; }

Result<int64_t> HfConfig::Int(std::string_view key) const {
  const Json* v = impl_->Find(key);
  if (v == nullptr) return impl_->Error(key, "missing; expected an integer");
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return impl_->Error(key, "integer out of range");
    }
    return v->get<int64_t>();
  }
  // Some configs write integers as 768.0.
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<int64_t>(d);
    }
  }
  return impl_->Error(key, "expected an integer, got " + Shown(*v));
}

Result<int64_t> HfConfig::Int(std::string_view key, int64_t default_value) const {
  if (!Has(key)) return default_value;
  return Int(key);
}

Result<double> HfConfig::Float(std::string_view key) const {
  const Json* v = impl_->Find(key);
  if (v == nullptr) return impl_->Error(key, "missing; expected a number");
  if (!v->is_number()) return impl_->Error(key, "expected a number, got " + Shown(*v));
  return v->get<double>();
}

Result<double> HfConfig::Float(std::string_view key, double default_value) const {
  if (!Has(key)) return default_value;
  return Float(key);
}

Result<bool> HfConfig::Bool(std::string_view key) const {
  const Json* v = impl_->Find(key);
  if (v == nullptr) return impl_->Error(key, "missing; expected true or false");
  if (!v->is_boolean()) return impl_->Error(key, "expected true or false, got " + Shown(*v));
  return v->get<bool>();
}

Result<bool> HfConfig::Bool(std::string_view key, bool default_value) const {
  if (!Has(key)) return default_value;
  return Bool(key);
}

Result<std::string> HfConfig::String(std::string_view key) const {
  const Json* v = impl_->Find(key);
  if (v == nullptr) return impl_->Error(key, "missing; expected a string");
  if (!v->is_string()) return impl_->Error(key, "expected a string, got " + Shown(*v));
  return v->get<std::string>();
}

Result<std::string> HfConfig::String(std::string_view key, std::string default_value) const {
  if (!Has(key)) return default_value;
  return String(key);
}

std::vector<std::string> HfConfig::architectures() const {
  std::vector<std::string> out;
  const Json* v = impl_->Find("architectures");
  if (v != nullptr && v->is_array()) {
    for (const Json& a : *v) {
      if (a.is_string()) out.push_back(a.get<std::string>());
    }
  } else if (v != nullptr && v->is_string()) {
    out.push_back(v->get<std::string>());
  }
  return out;
}

std::string HfConfig::model_type() const {
  const Json* v = impl_->Find("model_type");
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

// --- The Hugging Face table -------------------------------------------------------------------

const std::vector<HfArchitecture>& HfArchitectures() {
  // One entry per family mapping (formats/hf_<family>.cc).
  static const std::vector<HfArchitecture> kTable = [] {
    std::vector<HfArchitecture> table;
    for (auto family : {MambaHfArchitectures, Mamba2HfArchitectures}) {
      for (HfArchitecture& entry : family()) table.push_back(std::move(entry));
    }
    return table;
  }();
  return kTable;
}

Result<std::vector<ExpectedTensor>> ExpectedTensorsOf(const fb::ModelT& model) {
  // Packing asserts on a layer without a block (the union is required), so refuse it first.
  for (size_t i = 0; i < model.layers.size(); ++i) {
    if (!model.layers[i] || model.layers[i]->block.type == fb::BlockSpec::NONE ||
        model.layers[i]->block.value == nullptr) {
      return InvalidArgument("layer " + std::to_string(i) + ": no block spec");
    }
  }
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::Model::Pack(fbb, &model), fb::ModelIdentifier());
  return ExpectedTensors(*fb::GetModel(fbb.GetBufferPointer()));
}

Result<ConvertReport> Convert(const ConvertOptions& options) { return ConvertImpl(options, {}); }

Result<ConvertReport> Convert(const ConvertOptions& options,
                              const std::vector<HfArchitecture>& extra_architectures) {
  return ConvertImpl(options, extra_architectures);
}


Result<nlohmann::json> ReadHfConfigJson(const HfConfig& config) {
  std::ifstream in(config.path(), std::ios::binary);
  if (!in) return IoError(config.path() + ": cannot reread the file");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return ParseJsonBounded(PythonJsonToJson(text.str()));
  } catch (const std::exception& e) {
    return InvalidArgument(config.path() + ": not valid JSON: " + e.what());
  }
}

Status AttachHfTokenizer(const HfConfig& config, fb::ModelT* model) {
  const fs::path file = fs::path(config.path()).parent_path() / "tokenizer.json";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return Status::Ok();
  Result<fb::TokenizerT> tokenizer = ImportTokenizerJson(file.string());
  if (!tokenizer.ok()) {
    Status s = tokenizer.status();
    return s.Prepend("tokenizer (move tokenizer.json away to convert without it): ");
  }
  model->tokenizer = std::make_unique<fb::TokenizerT>(std::move(tokenizer).value());
  const std::pair<const char*, int32_t*> ids[] = {{"bos_token_id", &model->tokenizer->bos_id},
                                                  {"eos_token_id", &model->tokenizer->eos_id},
                                                  {"pad_token_id", &model->tokenizer->pad_id}};
  for (const auto& [key, id] : ids) {
    if (!config.Has(key)) continue;
    RECUR_ASSIGN_OR_RETURN(const int64_t v, config.Int(key));
    if (v >= 0 && v < model->vocab_size) *id = static_cast<int32_t>(v);
  }
  return Status::Ok();
}

}  // namespace recur
