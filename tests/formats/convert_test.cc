// The importer end to end: safetensors + native spec (and a Hugging Face directory through a
// test mapping) -> .recur, reopened with the reader and compared value by value.
#include "formats/convert.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "formats/dtype_convert.h"
#include "formats/recur_file.h"
#include "formats/safetensors.h"
#include "tests/test_util.h"

namespace recur {
namespace {

using testing::Contains;
using testing::WriteText;

namespace fs = std::filesystem;
using testing::TempDir;
using Shape = std::vector<int64_t>;

// A small mamba1 + glu-mlp model written as spec.json + model.safetensors. Each tensor's true
// values (exactly representable in its source dtype) are kept to compare against.
struct NativeModel {
  static constexpr int kVocab = 40, kDModel = 64, kDInner = 64, kDState = 8, kDConv = 4,
                       kDtRank = 4, kDff = 96;

  struct Source {
    SafetensorsDType dtype;
    Shape shape;
    std::vector<float> values;
    std::vector<std::byte> bytes;
  };
  std::map<std::string, Source> tensors;
  uint32_t seed = 12345;

  float Next() {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<float>(seed >> 8) / static_cast<float>(1 << 24) * 2.0f - 1.0f;
  }

  void Add(const std::string& name, Shape shape, float scale = 0.5f,
           SafetensorsDType dtype = SafetensorsDType::kF32) {
    Source s{dtype, shape, {}, {}};
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    for (int64_t i = 0; i < n; ++i) {
      const float v = Next() * scale;
      // Keep values exact in the source dtype, so the expected values are known exactly.
      switch (dtype) {
        case SafetensorsDType::kF16: {
          const uint16_t h = F32ToF16(v);
          s.values.push_back(F16ToF32(h));
          s.bytes.resize(s.bytes.size() + 2);
          std::memcpy(s.bytes.data() + s.bytes.size() - 2, &h, 2);
          break;
        }
        case SafetensorsDType::kBF16: {
          const uint16_t b = F32ToBF16(v);
          s.values.push_back(BF16ToF32(b));
          s.bytes.resize(s.bytes.size() + 2);
          std::memcpy(s.bytes.data() + s.bytes.size() - 2, &b, 2);
          break;
        }
        case SafetensorsDType::kF64: {
          const double d = v;
          s.values.push_back(v);
          s.bytes.resize(s.bytes.size() + 8);
          std::memcpy(s.bytes.data() + s.bytes.size() - 8, &d, 8);
          break;
        }
        default: {
          s.values.push_back(v);
          s.bytes.resize(s.bytes.size() + 4);
          std::memcpy(s.bytes.data() + s.bytes.size() - 4, &v, 4);
          break;
        }
      }
    }
    tensors[name] = std::move(s);
  }

  NativeModel() {
    Add("embed.weight", {kVocab, kDModel}, 1.0f, SafetensorsDType::kBF16);
    Add("layers.0.norm.weight", {kDModel}, 1.0f);
    Add("layers.0.mixer.in_proj.weight", {2 * kDInner, kDModel}, 0.2f, SafetensorsDType::kF16);
    Add("layers.0.mixer.conv1d.weight", {kDInner, 1, kDConv});  // PyTorch's Conv1d layout.
    Add("layers.0.mixer.conv1d.bias", {kDInner});
    Add("layers.0.mixer.x_proj.weight", {kDtRank + 2 * kDState, kDInner});
    Add("layers.0.mixer.dt_proj.weight", {kDInner, kDtRank});  // 4 columns: no q8_0.
    Add("layers.0.mixer.dt_proj.bias", {kDInner}, 0.5f, SafetensorsDType::kF64);
    Add("layers.0.mixer.A_log", {kDInner, kDState});
    Add("layers.0.mixer.D", {kDInner});
    Add("layers.0.mixer.out_proj.weight", {kDModel, kDInner}, 100.0f);  // Large values.
    Add("layers.1.norm.weight", {kDModel});
    Add("layers.1.mlp.up.weight", {kDff, kDModel});
    Add("layers.1.mlp.up.bias", {kDff});
    Add("layers.1.mlp.gate.weight", {kDff, kDModel}, 1e-3f);  // Small values.
    Add("layers.1.mlp.gate.bias", {kDff});
    Add("layers.1.mlp.down.weight", {kDModel, kDff});
    Add("layers.1.mlp.down.bias", {kDModel});
    Add("norm_f.weight", {kDModel});
    Add("head.weight", {kVocab, kDModel});
    Add("extra.unused", {3});
  }

  std::string Spec() const {
    return R"({
      "format": "recur-spec", "version": 1, "architecture": "hybrid",
      "d_model": 64,
      "input": {"kind": "tokens", "vocab_size": 40},
      "output": {"kind": "logits"},
      "final_norm": "rmsnorm",
      "layers": [
        {"kind": "mamba1", "d_inner": 64, "d_state": 8, "d_conv": 4, "dt_rank": 4},
        {"kind": "glu", "d_ff": 96, "activation": "silu", "bias": true}
      ],
      "metadata": {"description": "convert_test model"}
    })";
  }

  // Writes spec.json and model.safetensors into `dir`, leaving out `skip`.
  void Write(const TempDir& dir, const std::string& skip = "") const {
    std::vector<SafetensorsWriteTensor> list;
    for (const auto& [name, s] : tensors) {
      if (name == skip) continue;
      list.push_back({name, s.dtype, s.shape, std::span<const std::byte>(s.bytes)});
    }
    REQUIRE(WriteSafetensors(dir.File("model.safetensors"), list).ok());
    WriteText(dir.File("spec.json"), Spec());
  }
};

// A stored tensor decoded to floats.
std::vector<float> Decode(const TensorView& t) {
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<float> out(n);
  if (t.dtype == DType::kQ8_0) {
    REQUIRE(DequantizeQ8Row(reinterpret_cast<const int8_t*>(t.data), t.scales, t.scale_dtype, n,
                            out.data(), t.block_size)
                .ok());
  } else {
    REQUIRE(ConvertRow(t.dtype, t.data, DType::kF32, out.data(), n).ok());
  }
  return out;
}

// |stored - true| allowed for element i of a tensor stored as `t`.
float Tolerance(const TensorView& t, float truth, size_t i) {
  switch (t.dtype) {
    case DType::kF16:
      return std::fabs(truth) * 0x1p-11f + 0x1p-25f;
    case DType::kBF16:
      return std::fabs(truth) * 0x1p-8f;
    case DType::kQ8_0: {
      const size_t block = i / t.block_size;
      float scale;
      if (t.scale_dtype == DType::kF16) {
        uint16_t h;
        std::memcpy(&h, t.scales + block * 2, 2);
        scale = F16ToF32(h);
      } else {
        std::memcpy(&scale, t.scales + block * 4, 4);
      }
      return scale * 0.5f * (1.0f + 1e-5f);
    }
    default:
      return 0.0f;
  }
}

TEST_CASE("convert: native spec to every dtype, values round-trip within tolerance") {
  TempDir dir;
  NativeModel model;
  model.Write(dir);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    CAPTURE(DTypeName(dtype));
    ConvertOptions options;
    options.source = dir.File("spec.json");
    options.output = dir.File(std::string(DTypeName(dtype)) + ".recur");
    options.dtype = dtype;
    uint64_t last_done = 0, last_total = 1;
    options.progress = [&](uint64_t done, uint64_t total) {
      CHECK(done >= last_done);
      last_done = done;
      last_total = total;
    };
    std::vector<std::string> warnings;
    options.warning = [&](const std::string& w) { warnings.push_back(w); };
    auto report = Convert(options);
    REQUIRE_MESSAGE(report.ok(), report.status().message());
    CHECK(last_done == last_total);
    CHECK(report->source_kind == SourceKind::kNativeSpec);
    CHECK(report->architecture == "hybrid");
    CHECK(report->tensors_written == model.tensors.size() - 1);
    CHECK(report->unused_source_tensors == std::vector<std::string>{"extra.unused"});
    CHECK(!warnings.empty());
    CHECK(Contains(warnings.back(), "extra.unused"));
    if (dtype == DType::kQ8_0) {
      REQUIRE(report->fallbacks.size() == 1);
      CHECK(Contains(report->fallbacks[0], "layers.0.mixer.dt_proj.weight"));
      CHECK(Contains(report->fallbacks[0], "f16"));
    } else {
      CHECK(report->fallbacks.empty());
    }

    auto file = RecurFile::Open(options.output);
    REQUIRE_MESSAGE(file.ok(), file.status().message());
    CHECK(report->file_bytes == (*file)->file_size());
    uint64_t data_bytes = 0;
    for (uint64_t b : report->bytes_by_dtype) data_bytes += b;
    uint64_t stored_bytes = 0;
    for (const TensorView& t : (*file)->tensors()) stored_bytes += t.total_bytes();
    CHECK(data_bytes == stored_bytes);

    CHECK((*file)->Metadata("source") == "spec.json");
    CHECK((*file)->Metadata("source_kind") == "native-spec");
    CHECK((*file)->Metadata("converter") == kConverterVersion);
    CHECK((*file)->Metadata("dtype") == DTypeName(dtype));
    CHECK((*file)->Metadata("description") == "convert_test model");
    CHECK((*file)->model().layers()->size() == 2);
    CHECK((*file)->Find("extra.unused") == nullptr);

    auto expected = ExpectedTensors((*file)->model());
    REQUIRE(expected.ok());
    CHECK(expected->size() == (*file)->tensors().size());
    for (const ExpectedTensor& e : *expected) {
      CAPTURE(e.name);
      const TensorView* t = (*file)->Find(e.name);
      REQUIRE(t != nullptr);
      CHECK(std::vector<int64_t>(t->shape, t->shape + t->rank) == e.shape);
      if (!e.matrix) {
        CHECK(t->dtype == DType::kF32);
      } else if (dtype == DType::kQ8_0 && e.shape.back() % 32 != 0) {
        CHECK(t->dtype == DType::kF16);
      } else {
        CHECK(t->dtype == dtype);
      }
      const std::vector<float> got = Decode(*t);
      const std::vector<float>& truth = model.tensors.at(e.name).values;
      REQUIRE(got.size() == truth.size());
      size_t bad = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        if (!(std::fabs(got[i] - truth[i]) <= Tolerance(*t, truth[i], i)) && ++bad <= 3) {
          FAIL_CHECK("element " << i << ": stored " << got[i] << ", source " << truth[i]);
        }
      }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("convert: q8_0 with f32 scales") {
  TempDir dir;
  NativeModel model;
  model.Write(dir);
  ConvertOptions options;
  options.source = dir.File("spec.json");
  options.output = dir.File("q8f32.recur");
  options.dtype = DType::kQ8_0;
  options.q8_scale_dtype = DType::kF32;
  auto report = Convert(options);
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  auto file = RecurFile::Open(options.output);
  REQUIRE(file.ok());
  const TensorView* t = (*file)->Find("layers.0.mixer.out_proj.weight");
  REQUIRE(t != nullptr);
  CHECK(t->dtype == DType::kQ8_0);
  CHECK(t->scale_dtype == DType::kF32);
  const std::vector<float> got = Decode(*t);
  const std::vector<float>& truth = model.tensors.at("layers.0.mixer.out_proj.weight").values;
  for (size_t i = 0; i < got.size(); ++i) {
    REQUIRE(std::fabs(got[i] - truth[i]) <= Tolerance(*t, truth[i], i));
  }
}

TEST_CASE("convert: missing, mis-shaped and non-float tensors are named") {
  TempDir dir;
  NativeModel model;
  ConvertOptions options;
  options.source = dir.File("spec.json");
  options.output = dir.File("out.recur");

  SUBCASE("missing") {
    model.Write(dir, "layers.0.mixer.D");
    auto report = Convert(options);
    CHECK(report.status().code() == StatusCode::kNotFound);
    const std::string& m = report.status().message();
    CHECK(Contains(m, "tensor 'layers.0.mixer.D' [64] is missing"));
    CHECK(Contains(m, dir.File("model.safetensors")));
  }
  SUBCASE("mis-shaped") {
    model.Add("layers.0.mixer.A_log", {64, 9});
    model.Add("layers.1.mlp.down.weight", {96, 64});  // Transposed.
    model.Write(dir);
    auto report = Convert(options);
    CHECK(report.status().code() == StatusCode::kInvalidArgument);
    const std::string& m = report.status().message();
    CHECK(Contains(m, "2 problems"));
    CHECK(Contains(m, "tensor 'layers.0.mixer.A_log': expected shape [64, 8], found [64, 9]"));
    CHECK(
        Contains(m, "tensor 'layers.1.mlp.down.weight': expected shape [64, 96], found [96, 64]"));
  }
  SUBCASE("not a float") {
    model.Write(dir);
    NativeModel::Source& d = model.tensors["layers.0.mixer.D"];
    std::vector<SafetensorsWriteTensor> list;
    std::vector<std::byte> ints(64 * 8);
    for (const auto& [name, s] : model.tensors) {
      if (name == "layers.0.mixer.D") {
        list.push_back({name, SafetensorsDType::kI64, d.shape, std::span<const std::byte>(ints)});
      } else {
        list.push_back({name, s.dtype, s.shape, std::span<const std::byte>(s.bytes)});
      }
    }
    REQUIRE(WriteSafetensors(dir.File("model.safetensors"), list).ok());
    auto report = Convert(options);
    CHECK(!report.ok());
    CHECK(Contains(report.status().message(), "tensor 'layers.0.mixer.D' is I64"));
  }
  SUBCASE("no weights file") {
    WriteText(dir.File("spec.json"), model.Spec());
    auto report = Convert(options);
    CHECK(report.status().code() == StatusCode::kNotFound);
    CHECK(Contains(report.status().message(), "\"weights\""));
    CHECK(Contains(report.status().message(), "model.safetensors"));
  }
  SUBCASE("a bad spec") {
    model.Write(dir);
    WriteText(dir.File("spec.json"), R"({"d_model": 0})");
    auto report = Convert(options);
    CHECK(Contains(report.status().message(), "d_model: expected a positive integer"));
  }
  SUBCASE("an rwkv layer with a layer norm (it applies its own ln1 and ln2)") {
    model.Write(dir);
    WriteText(dir.File("spec.json"), R"({"d_model": 64, "input": {"kind": "tokens",
      "vocab_size": 40}, "layers": [{"kind": "rwkv", "version": 7, "n_heads": 1,
      "head_size": 64, "d_ffn": 256, "lora_decay": 8, "lora_a": 8, "lora_g": 8}]})");
    auto report = Convert(options);
    CHECK(report.status().code() == StatusCode::kInvalidArgument);
    CHECK(Contains(report.status().message(), "the layer norm must be none"));
  }
  SUBCASE("bad options") {
    model.Write(dir);
    options.dtype = DType::kI32;
    CHECK(Contains(Convert(options).status().message(), "f32, f16, bf16 or q8_0"));
    options.dtype = std::nullopt;
    options.output = "";
    CHECK(!Convert(options).ok());
  }
  CHECK(!fs::exists(dir.File("out.recur")));
}

TEST_CASE("convert: DetectSource") {
  TempDir dir;
  fs::create_directories(dir.path() / "hf");
  WriteText(dir.File("hf/config.json"), R"({"architectures": ["MambaForCausalLM"],
                                           "model_type": "mamba"})");
  CHECK(DetectSource(dir.File("hf")).value() == SourceKind::kHuggingFace);
  CHECK(DetectSource(dir.File("hf/config.json")).value() == SourceKind::kHuggingFace);
  WriteText(dir.File("spec.json"), "{}");
  CHECK(DetectSource(dir.File("spec.json")).value() == SourceKind::kNativeSpec);
  // rwkv.cpp's header: magic 'ggmf' as a little-endian u32, then version, vocab, embed, layers.
  const unsigned char rwkv[24] = {0x66, 0x6d, 0x67, 0x67, 101, 0, 0, 0, 0, 1, 0, 0,
                                  64,   0,    0,    0,    12,  0, 0, 0, 0, 0, 0, 0};
  WriteText(dir.File("tiny.bin"), std::string(reinterpret_cast<const char*>(rwkv), 24));
  CHECK(DetectSource(dir.File("tiny.bin")).value() == SourceKind::kRwkvCpp);

  auto status_of = [&](const std::string& name) { return DetectSource(dir.File(name)).status(); };
  CHECK(status_of("nothing-here").code() == StatusCode::kNotFound);
  CHECK(Contains(status_of(".").message(), "without config.json"));
  WriteText(dir.File("w.safetensors"), "12345678{}");
  CHECK(Contains(status_of("w.safetensors").message(), "bare safetensors"));
  WriteText(dir.File("m.gguf"), "GGUF\3\0\0\0");
  CHECK(status_of("m.gguf").code() == StatusCode::kUnsupported);
  WriteText(dir.File("m.pt"), std::string("PK\3\4rest", 8));
  CHECK(Contains(status_of("m.pt").message(), "PyTorch"));
  WriteText(dir.File("m.txt"), "hello");
  CHECK(Contains(status_of("m.txt").message(), "not a recognised model source"));
}

TEST_CASE("convert: bare rwkv.cpp headers and unknown Hugging Face architectures are refused clearly") {
  TempDir dir;
  const unsigned char rwkv[24] = {0x66, 0x6d, 0x67, 0x67, 101, 0, 0, 0, 0, 1, 0, 0,
                                  64,   0,    0,    0,    12,  0, 0, 0, 0, 0, 0, 0};
  WriteText(dir.File("tiny.bin"), std::string(reinterpret_cast<const char*>(rwkv), 24));
  ConvertOptions options;
  options.source = dir.File("tiny.bin");
  options.output = dir.File("out.recur");
  auto report = Convert(options);
  CHECK(report.status().code() == StatusCode::kInvalidArgument);
  CHECK(Contains(report.status().message(), "tiny.bin"));
  CHECK(Contains(report.status().message(), "no tensor records"));

  fs::create_directories(dir.path() / "hf");
  WriteText(dir.File("hf/config.json"), R"({"architectures": ["LlamaForCausalLM"],
                                           "model_type": "llama", "hidden_size": 64})");
  options.source = dir.File("hf");
  report = Convert(options);
  CHECK(report.status().code() == StatusCode::kUnsupported);
  CHECK(Contains(report.status().message(), "'LlamaForCausalLM'"));
  CHECK(Contains(report.status().message(), "model_type 'llama'"));
  CHECK(Contains(report.status().message(), "MambaForCausalLM"));  // Lists what is supported.
  CHECK(Contains(report.status().message(), "not supported by this build yet"));

  const std::string shared = testing::SharedDir();
  if (!shared.empty()) {
    options.source = shared + "/models/rwkv-tiny/tiny-rwkv-7v0-834K-FP32.bin";
    CHECK(DetectSource(options.source).value() == SourceKind::kRwkvCpp);
    CHECK(Convert(options).ok());  // tests/formats/rwkv_cpp_test.cc checks what it writes.
  }
}

TEST_CASE("convert: HfConfig getters name the file and key") {
  auto config = HfConfig::Parse(R"({"hidden_size": 64, "eps": 1e-5, "flag": true,
      "name": "x", "as_float": 768.0, "unset": null, "architectures": ["A", "B"]})",
                                "cfg/config.json");
  REQUIRE(config.ok());
  CHECK(config->Int("hidden_size").value() == 64);
  CHECK(config->Int("as_float").value() == 768);
  CHECK(config->Int("unset", 5).value() == 5);
  CHECK(config->Int("absent", 7).value() == 7);
  CHECK(config->Float("eps").value() == doctest::Approx(1e-5));
  CHECK(config->Float("hidden_size").value() == 64.0);
  CHECK(config->Bool("flag").value());
  CHECK(config->String("name").value() == "x");
  CHECK(config->architectures() == std::vector<std::string>{"A", "B"});
  CHECK(config->model_type().empty());
  CHECK(!config->Has("unset"));
  const Status missing = config->Int("nope").status();
  CHECK(Contains(missing.message(), "cfg/config.json: \"nope\": missing"));
  CHECK(Contains(config->Int("eps").status().message(), "expected an integer"));
  CHECK(Contains(config->Bool("name").status().message(), "\"name\": expected true or false"));
  CHECK(!HfConfig::Parse("{", "c.json").ok());
  CHECK(!HfConfig::Parse("[]", "c.json").ok());
  CHECK(HfConfig::Load("/nonexistent/config.json").status().code() == StatusCode::kNotFound);
}

// A mapping in the shape the Mamba family issue will add to the table: config.json -> ModelT,
// and canonical names -> the checkpoint's names.
Result<HfMapping> TestMamba1Mapping(const HfConfig& config) {
  HfMapping mapping;
  fb::ModelT& m = mapping.model;
  m.architecture = "mamba1";
  RECUR_ASSIGN_OR_RETURN(int64_t d_model, config.Int("hidden_size"));
  RECUR_ASSIGN_OR_RETURN(int64_t layers, config.Int("num_hidden_layers"));
  RECUR_ASSIGN_OR_RETURN(int64_t vocab, config.Int("vocab_size"));
  RECUR_ASSIGN_OR_RETURN(bool tied, config.Bool("tie_word_embeddings", true));
  m.d_model = static_cast<int32_t>(d_model);
  m.vocab_size = m.output_size = static_cast<int32_t>(vocab);
  m.tie_embeddings = tied;
  mapping.source_names["embed.weight"] = "backbone.embeddings.weight";
  mapping.source_names["norm_f.weight"] = "backbone.norm_f.weight";
  for (int64_t i = 0; i < layers; ++i) {
    fb::Mamba1SpecT s;
    RECUR_ASSIGN_OR_RETURN(int64_t d_inner, config.Int("intermediate_size"));
    RECUR_ASSIGN_OR_RETURN(int64_t d_state, config.Int("state_size"));
    RECUR_ASSIGN_OR_RETURN(int64_t d_conv, config.Int("conv_kernel"));
    RECUR_ASSIGN_OR_RETURN(int64_t dt_rank, config.Int("time_step_rank"));
    s.d_inner = static_cast<int32_t>(d_inner);
    s.d_state = static_cast<int32_t>(d_state);
    s.d_conv = static_cast<int32_t>(d_conv);
    s.dt_rank = static_cast<int32_t>(dt_rank);
    auto layer = std::make_unique<fb::LayerT>();
    layer->block.Set(std::move(s));
    m.layers.push_back(std::move(layer));
    const std::string p = "layers." + std::to_string(i) + ".";
    for (const char* t :
         {"norm.weight", "mixer.in_proj.weight", "mixer.conv1d.weight", "mixer.conv1d.bias",
          "mixer.x_proj.weight", "mixer.dt_proj.weight", "mixer.dt_proj.bias", "mixer.A_log",
          "mixer.D", "mixer.out_proj.weight"}) {
      mapping.source_names[p + t] = "backbone." + p + t;
    }
  }
  return mapping;
}

TEST_CASE("convert: a Hugging Face directory through a registered mapping (mamba1-tiny)") {
  const std::string shared = testing::SharedDir();
  if (shared.empty()) {
    MESSAGE("skipped: the shared fixtures folder is absent");
    return;
  }
  TempDir dir;
  ConvertOptions options;
  options.source = shared + "/fixtures/mamba1-tiny";
  options.output = dir.File("mamba1-tiny.recur");
  const std::vector<HfArchitecture> extra = {{"MambaForCausalLM", "mamba", TestMamba1Mapping}};
  auto report = Convert(options, extra);
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  CHECK(report->source_kind == SourceKind::kHuggingFace);
  CHECK(report->tensors_written == 22);
  CHECK(report->unused_source_tensors.empty());

  auto file = RecurFile::Open(options.output);
  REQUIRE_MESSAGE(file.ok(), file.status().message());
  CHECK((*file)->Metadata("source") == "mamba1-tiny");
  CHECK((*file)->Metadata("source_kind") == "huggingface");
  auto store = TensorStore::Open(options.source);
  REQUIRE(store.ok());
  // conv1d arrives squeezed from [128, 1, 4] to [128, 4] with the same bytes.
  const TensorView* conv = (*file)->Find("layers.1.mixer.conv1d.weight");
  REQUIRE(conv != nullptr);
  CHECK(conv->HasShape({128, 4}));
  const SafetensorsTensor* source = (*store)->Find("backbone.layers.1.mixer.conv1d.weight");
  REQUIRE(source != nullptr);
  CHECK(std::memcmp(conv->data, source->data, source->size) == 0);
  const TensorView* embed = (*file)->Find("embed.weight");
  REQUIRE(embed != nullptr);
  CHECK(std::memcmp(embed->data, (*store)->Find("backbone.embeddings.weight")->data, embed->size) ==
        0);

  // The built-in table maps the same directory to the same tensors.
  options.output = dir.File("builtin.recur");
  auto builtin = Convert(options);
  REQUIRE_MESSAGE(builtin.ok(), builtin.status().message());
  CHECK(builtin->tensors_written == 22);
}

}  // namespace
}  // namespace recur
