// Importers: turn someone else's checkpoint into a `.recur` file. This is what `recur convert`
// calls.
//
// Sources:
//  - a Hugging Face directory (config.json + model.safetensors or a sharded index): the
//    architecture named in config.json picks a mapping from the table of HfArchitecture entries
//    (one function per family: config.json -> fb::ModelT and canonical -> checkpoint names);
//  - a native JSON spec (docs/native-spec.md) naming the layers and a safetensors file whose
//    tensor names are recur's canonical names;
//  - an rwkv.cpp FP32/FP16 file (formats/rwkv_cpp.h; docs/rwkv.md).
// Conversion streams: each tensor is read from the mapped source and converted while the output
// is written, so no whole-model copy is ever held.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/block_tensors.h"
#include "formats/dtype.h"
#include "formats/recur_generated.h"
#include "formats/recur_writer.h"
#include "formats/status.h"

namespace recur {

// Written into every converted file's metadata as "converter".
inline constexpr const char* kConverterVersion = "recur-convert 0.1.0";

enum class SourceKind { kHuggingFace, kNativeSpec, kRwkvCpp };
// "huggingface", "native-spec", "rwkv.cpp".
std::string_view SourceKindName(SourceKind kind);

// What `path` is: a directory with config.json (or a config.json file) -> Hugging Face; another
// .json file -> native spec; a file starting with rwkv.cpp's magic -> rwkv.cpp. Anything else
// gets an error saying what was found and what is accepted (bare safetensors, GGUF and PyTorch
// pickles each get their own hint).
Result<SourceKind> DetectSource(const std::string& path);

// Called with one line of warning text (unused source tensors, dtype fallbacks).
using WarningFn = std::function<void(const std::string& message)>;

struct ConvertOptions {
  std::string source;  // Directory, spec .json or rwkv.cpp file.
  std::string output;  // The .recur file to write.
  // Weight matrices' dtype: f32 (the default), f16, bf16 or q8_0. Other parameters stay f32.
  std::optional<DType> dtype;
  // q8_0 scales: f16 (ggml's choice, the default) or f32.
  DType q8_scale_dtype = DType::kF16;
  ProgressFn progress;  // Bytes of tensor data written, of the total.
  WarningFn warning;    // Optional; the same lines are in the report.
  bool use_mmap = true;
  // Extra "key": "value" metadata for the output (after the source's own).
  std::vector<std::pair<std::string, std::string>> metadata;
};

struct ConvertReport {
  SourceKind source_kind = SourceKind::kNativeSpec;
  std::string architecture;
  std::string weights;  // What the tensors were read from (a file or "index (n shards)").
  size_t tensors_written = 0;
  // Tensor data bytes per stored dtype (q8_0 counts its scales), indexed by DType.
  std::array<uint64_t, kDTypeCount> bytes_by_dtype{};
  uint64_t file_bytes = 0;
  // "layers.0.mixer.dt_proj.weight: last dimension 4 is not a multiple of 32; stored as f16".
  std::vector<std::string> fallbacks;
  // Source tensors that no canonical tensor read (by source name), sorted.
  std::vector<std::string> unused_source_tensors;
};

// Converts options.source to options.output. Errors name the tensor and the file searched
// (missing tensors, wrong shapes, non-float dtypes are all listed together).
Result<ConvertReport> Convert(const ConvertOptions& options);

// ---------------------------------------------------------------------------------------------
// For importer authors: the Hugging Face architecture table.

// A parsed config.json with typed getters whose errors name the file and key
// ("config.json: \"hidden_size\": expected an integer").
class HfConfig {
 public:
  static Result<HfConfig> Load(const std::string& path);
  static Result<HfConfig> Parse(std::string_view text, std::string path);

  const std::string& path() const;
  bool Has(std::string_view key) const;
  Result<int64_t> Int(std::string_view key) const;
  Result<int64_t> Int(std::string_view key, int64_t default_value) const;
  Result<double> Float(std::string_view key) const;
  Result<double> Float(std::string_view key, double default_value) const;
  Result<bool> Bool(std::string_view key) const;
  Result<bool> Bool(std::string_view key, bool default_value) const;
  Result<std::string> String(std::string_view key) const;
  Result<std::string> String(std::string_view key, std::string default_value) const;
  // "architectures" (empty when absent) and "model_type" ("" when absent).
  std::vector<std::string> architectures() const;
  std::string model_type() const;

 private:
  struct Impl;
  explicit HfConfig(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// What a family's mapping makes of a config.json.
struct HfMapping {
  fb::ModelT model;  // Everything but the tensor table.
  // Canonical name -> the checkpoint's name; a canonical name not listed is looked up as is.
  // Source shapes may differ from canonical ones by size-1 dimensions only (conv1d's
  // [d_inner, 1, d_conv] is read as [d_inner, d_conv]).
  std::map<std::string, std::string> source_names;
};

using HfMapFn = std::function<Result<HfMapping>(const HfConfig& config)>;

struct HfArchitecture {
  std::string architecture;  // As in config.json's "architectures", e.g. "MambaForCausalLM".
  std::string model_type;    // config.json's "model_type", used when "architectures" is absent.
  HfMapFn map;
};

// Python's json module writes float("inf") and float("nan") as bare Infinity and NaN, which
// strict JSON refuses; outside strings this maps them to 1e308 and null. HfConfig applies it.
std::string PythonJsonToJson(std::string_view text);

// The built-in table (family issues add their entries in convert.cc).
const std::vector<HfArchitecture>& HfArchitectures();

// The canonical tensor list of a ModelT (packs it and calls ExpectedTensors).
Result<std::vector<ExpectedTensor>> ExpectedTensorsOf(const fb::ModelT& model);

// Convert() with extra Hugging Face mappings tried before the built-in table (tests, plugins).
Result<ConvertReport> Convert(const ConvertOptions& options,
                              const std::vector<HfArchitecture>& extra_architectures);

}  // namespace recur
