#include "formats/safetensors.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "formats/convert.h"
#include "formats/dtype_convert.h"
#include "tests/test_util.h"

namespace recur {
namespace {

using testing::Contains;

namespace fs = std::filesystem;

using testing::TempDir;

// The u64 little-endian header length, the header, then the data: built byte by byte so that
// the reader is tested against the format, not against our own writer.
std::string Bytes(const std::string& header, const std::string& data,
                  uint64_t length_override = 0) {
  const uint64_t n = length_override != 0 ? length_override : header.size();
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string FloatBytes(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) {
    char b[4];
    std::memcpy(b, &v, 4);  // The test machines are little-endian, as the format is.
    s.append(b, 4);
  }
  return s;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Opens bytes written to a file (mapped), and also through FromBytes; both must agree.
Status OpenStatus(const TempDir& dir, const std::string& bytes, std::string* message = nullptr) {
  const std::string path = dir.File("x.safetensors");
  WriteFile(path, bytes);
  auto file = SafetensorsFile::Open(path);
  auto from_bytes = SafetensorsFile::FromBytes(bytes.data(), bytes.size(), path);
  CHECK(file.ok() == from_bytes.ok());
  if (message != nullptr) *message = file.status().message();
  return file.status();
}

TEST_CASE("safetensors: hand-written F32 file, mapped and read") {
  TempDir dir;
  const std::string header =
      R"({"__metadata__":{"format":"pt","n":"2"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  const std::string path = dir.File("w.safetensors");
  WriteFile(path, Bytes(header, FloatBytes({1.0f, 2.0f, -3.0f, 4.5f})));
  for (bool use_mmap : {true, false}) {
    CAPTURE(use_mmap);
    auto file = SafetensorsFile::Open(path, use_mmap);
    REQUIRE(file.ok());
    CHECK((*file)->mapped() == use_mmap);
    REQUIRE((*file)->tensors().size() == 1);
    const SafetensorsTensor* t = (*file)->Find("w");
    REQUIRE(t != nullptr);
    CHECK(t->dtype == SafetensorsDType::kF32);
    CHECK(t->shape == std::vector<int64_t>{2, 2});
    CHECK(t->numel() == 4);
    CHECK(t->size == 16);
    CHECK(t->ShapeString() == "[2, 2]");
    CHECK(*t->file == path);
    float values[4];
    std::memcpy(values, t->data, 16);
    CHECK(values[0] == 1.0f);
    CHECK(values[2] == -3.0f);
    CHECK(values[3] == 4.5f);
    CHECK((*file)->metadata().at("format") == "pt");
    CHECK((*file)->Find("missing") == nullptr);
  }
}

TEST_CASE("safetensors: F16 and BF16 data, scalars, empty tensors, header padding") {
  TempDir dir;
  // F16 1, -2, inf; BF16 1, 3.140625; a scalar F32 and an empty tensor; padded header.
  std::string data;
  for (uint16_t h : {0x3c00, 0xc000, 0x7c00, 0x3f80, 0x4049}) {
    data.push_back(static_cast<char>(h & 0xff));
    data.push_back(static_cast<char>(h >> 8));
  }
  data += FloatBytes({0.5f});
  const std::string header = R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]},)"
                             R"("s":{"dtype":"F32","shape":[],"data_offsets":[10,14]},)"
                             R"("e":{"dtype":"F32","shape":[0,4],"data_offsets":[14,14]}}     )";
  const std::string path = dir.File("m.safetensors");
  WriteFile(path, Bytes(header, data));
  auto file = SafetensorsFile::Open(path);
  REQUIRE(file.ok());
  CHECK((*file)->tensors().size() == 4);
  // Tensors are listed in data order.
  CHECK((*file)->tensors()[0].name == "h");

  const SafetensorsTensor* h = (*file)->Find("h");
  REQUIRE(h != nullptr);
  CHECK(h->dtype == SafetensorsDType::kF16);
  CHECK(ToDType(h->dtype) == DType::kF16);
  float out[3];
  REQUIRE(ConvertRow(DType::kF16, h->data, DType::kF32, out, 3).ok());
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == -2.0f);
  CHECK(std::isinf(out[2]));

  const SafetensorsTensor* b = (*file)->Find("b");
  REQUIRE(b != nullptr);
  // Its data starts at an odd address offset: the view is deliberately not aligned.
  REQUIRE(ConvertRow(DType::kBF16, b->data, DType::kF32, out, 2).ok());
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == 3.140625f);

  const SafetensorsTensor* s = (*file)->Find("s");
  REQUIRE(s != nullptr);
  CHECK(s->shape.empty());
  CHECK(s->numel() == 1);
  const SafetensorsTensor* e = (*file)->Find("e");
  REQUIRE(e != nullptr);
  CHECK(e->size == 0);
  CHECK(e->numel() == 0);
}

TEST_CASE("safetensors: non-float dtypes open and are described") {
  TempDir dir;
  std::string data(8 + 4 + 1 + 1 + 8, '\0');
  const std::string header = R"({"i64":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
                             R"("i32":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},)"
                             R"("i8":{"dtype":"I8","shape":[1],"data_offsets":[12,13]},)"
                             R"("flag":{"dtype":"BOOL","shape":[1],"data_offsets":[13,14]},)"
                             R"("f64":{"dtype":"F64","shape":[1],"data_offsets":[14,22]}})";
  const std::string path = dir.File("i.safetensors");
  WriteFile(path, Bytes(header, data));
  auto file = SafetensorsFile::Open(path);
  REQUIRE(file.ok());
  CHECK((*file)->Find("i64")->dtype == SafetensorsDType::kI64);
  CHECK(!ToDType(SafetensorsDType::kI64).has_value());
  CHECK(ToDType(SafetensorsDType::kI32) == DType::kI32);
  CHECK(ToDType(SafetensorsDType::kF64) == DType::kF64);
  CHECK(!ToDType(SafetensorsDType::kBool).has_value());
  CHECK(SafetensorsDTypeName((*file)->Find("flag")->dtype) == "BOOL");
  CHECK(SafetensorsDTypeSize(SafetensorsDType::kF64) == 8);
  CHECK(ParseSafetensorsDType("F8_E4M3") == SafetensorsDType::kF8E4M3);
  CHECK(!ParseSafetensorsDType("f32").has_value());  // Case matters in the format.
}

TEST_CASE("safetensors: malformed files give clean errors naming the file and tensor") {
  TempDir dir;
  const std::string data16 = FloatBytes({1, 2, 3, 4});
  const std::string good = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  std::string m;

  SUBCASE("empty and tiny files") {
    CHECK(OpenStatus(dir, "", &m).code() == StatusCode::kCorrupt);
    CHECK(Contains(m, "too small"));
    CHECK(Contains(m, "x.safetensors"));
    CHECK(!OpenStatus(dir, "\x05\0\0", &m).ok());
  }
  SUBCASE("truncated in the header") {
    const std::string full = Bytes(good, data16);
    CHECK(!OpenStatus(dir, full.substr(0, 20), &m).ok());
    CHECK(Contains(m, "runs past the end of the file"));
  }
  SUBCASE("truncated in the data") {
    const std::string full = Bytes(good, data16);
    CHECK(!OpenStatus(dir, full.substr(0, full.size() - 3), &m).ok());
    CHECK(Contains(m, "tensor 'w'"));
    CHECK(Contains(m, "past the data region"));
  }
  SUBCASE("every truncation fails cleanly") {
    const std::string full = Bytes(good, data16);
    for (size_t n = 0; n < full.size(); ++n) {
      auto f = SafetensorsFile::FromBytes(full.data(), n, "cut");
      CHECK(!f.ok());
    }
  }
  SUBCASE("byte flips anywhere in the header never crash") {
    const std::string full =
        Bytes(R"({"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
              R"("w":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}})",
              data16);
    size_t refused = 0;
    for (size_t at = 0; at < full.size() - data16.size(); ++at) {
      for (char value : {'\0', '"', '9', '-', '[', '}', ',', '\xff'}) {
        std::string bytes = full;
        bytes[at] = value;
        auto f = SafetensorsFile::FromBytes(bytes.data(), bytes.size(), "flipped");
        if (!f.ok()) {
          ++refused;
          CHECK(Contains(f.status().message(), "flipped: "));
        }
      }
    }
    CHECK(refused > 0);
  }
  SUBCASE("header length too large") {
    CHECK(!OpenStatus(dir, Bytes(good, data16, 1ull << 40), &m).ok());
    CHECK(Contains(m, "implausibly large"));
    CHECK(!OpenStatus(dir, Bytes(good, data16, ~0ull), &m).ok());
    CHECK(!OpenStatus(dir, Bytes(good, data16, good.size() + 17), &m).ok());
    CHECK(Contains(m, "runs past the end of the file"));
  }
  SUBCASE("bad JSON") {
    CHECK(!OpenStatus(dir, Bytes(R"({"w": {"dtype": "F32", )", data16), &m).ok());
    CHECK(Contains(m, "invalid JSON"));
    CHECK(!OpenStatus(dir, Bytes("[1, 2]", ""), &m).ok());
    CHECK(Contains(m, "not a JSON object"));
    CHECK(!OpenStatus(dir, Bytes(R"({"w": 3})", ""), &m).ok());
    CHECK(Contains(m, "tensor 'w'"));
  }
  SUBCASE("offsets out of range") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})";
    CHECK(!OpenStatus(dir, Bytes(h, data16), &m).ok());
    CHECK(Contains(m, "tensor 'w'"));
    CHECK(Contains(m, "[16, 32]"));
    const std::string backwards = R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})";
    CHECK(!OpenStatus(dir, Bytes(backwards, data16), &m).ok());
    CHECK(Contains(m, "end before they begin"));
    const std::string arity = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}})";
    CHECK(!OpenStatus(dir, Bytes(arity, data16), &m).ok());
    CHECK(Contains(m, "data_offsets"));
    const std::string negative = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[-4,12]}})";
    CHECK(!OpenStatus(dir, Bytes(negative, data16), &m).ok());
  }
  SUBCASE("shape and size disagree") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})";
    CHECK(!OpenStatus(dir, Bytes(h, data16), &m).ok());
    CHECK(Contains(m, "tensor 'w'"));
    CHECK(Contains(m, "needs 12 bytes"));
    const std::string f16 = R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})";
    CHECK(!OpenStatus(dir, Bytes(f16, data16), &m).ok());
    const std::string huge =
        R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}})";
    CHECK(!OpenStatus(dir, Bytes(huge, data16), &m).ok());
    CHECK(Contains(m, "more than 2^64"));
    const std::string bad_dim = R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}})";
    CHECK(!OpenStatus(dir, Bytes(bad_dim, data16), &m).ok());
    CHECK(Contains(m, "non-negative integers"));
    const std::string neg_dim = R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})";
    CHECK(!OpenStatus(dir, Bytes(neg_dim, data16), &m).ok());
    const std::string no_shape = R"({"w":{"dtype":"F32","data_offsets":[0,16]}})";
    CHECK(!OpenStatus(dir, Bytes(no_shape, data16), &m).ok());
    CHECK(Contains(m, "shape"));
  }
  SUBCASE("overlapping tensors") {
    const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    CHECK(!OpenStatus(dir, Bytes(h, data16), &m).ok());
    CHECK(Contains(m, "'a'"));
    CHECK(Contains(m, "'b'"));
    CHECK(Contains(m, "overlap"));
  }
  SUBCASE("unknown dtype") {
    const std::string h = R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}})";
    CHECK(OpenStatus(dir, Bytes(h, data16), &m).code() == StatusCode::kCorrupt);
    CHECK(Contains(m, "tensor 'w'"));
    CHECK(Contains(m, "unknown dtype 'Q4'"));
    CHECK(Contains(m, "BF16"));  // The message lists what is known.
  }
  SUBCASE("duplicate names") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
    CHECK(!OpenStatus(dir, Bytes(h, data16), &m).ok());
    CHECK(Contains(m, "'w' twice"));
  }
  SUBCASE("bad metadata") {
    const std::string h =
        R"({"__metadata__":[1],"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
    CHECK(!OpenStatus(dir, Bytes(h, data16), &m).ok());
    CHECK(Contains(m, "__metadata__"));
  }
  SUBCASE("missing file and directories") {
    auto f = SafetensorsFile::Open(dir.File("nope.safetensors"));
    CHECK(f.status().code() == StatusCode::kNotFound);
    CHECK(Contains(f.status().message(), "nope.safetensors"));
    CHECK(!SafetensorsFile::Open(dir.path().string()).ok());
  }
}

TEST_CASE("safetensors: the writer's files read back, header padded to 8 bytes") {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> b = {F32ToF16(0.5f), F32ToF16(-1.0f), F32ToF16(2.0f)};
  const std::vector<uint16_t> c = {F32ToBF16(1.25f)};
  std::vector<SafetensorsWriteTensor> tensors(3);
  tensors[0] = {"a.weight", SafetensorsDType::kF32, {2, 3}, std::as_bytes(std::span(a))};
  tensors[1] = {"b", SafetensorsDType::kF16, {3}, std::as_bytes(std::span(b))};
  tensors[2] = {"c", SafetensorsDType::kBF16, {1, 1}, std::as_bytes(std::span(c))};
  const std::string path = dir.File("out.safetensors");
  REQUIRE(WriteSafetensors(path, tensors, {{"generator", "test"}}).ok());

  std::ifstream f(path, std::ios::binary);
  unsigned char len[8];
  f.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  CHECK((8 + n) % 8 == 0);

  auto file = SafetensorsFile::Open(path);
  REQUIRE(file.ok());
  CHECK((*file)->tensors().size() == 3);
  CHECK((*file)->metadata().at("generator") == "test");
  const SafetensorsTensor* t = (*file)->Find("a.weight");
  REQUIRE(t != nullptr);
  CHECK(t->shape == std::vector<int64_t>{2, 3});
  CHECK(std::memcmp(t->data, a.data(), 24) == 0);
  CHECK((*file)->Find("b")->dtype == SafetensorsDType::kF16);
  CHECK((*file)->Find("c")->shape == std::vector<int64_t>{1, 1});

  // The writer refuses inconsistent input.
  tensors[1].shape = {4};
  CHECK(!WriteSafetensors(path, tensors).ok());
  tensors[1].shape = {3};
  tensors[2].name = "a.weight";
  CHECK(!WriteSafetensors(path, tensors).ok());
}

// Two shards: one from the writer, one written by hand; an index naming both.
struct ShardedFixture {
  TempDir dir;
  std::vector<float> a = {1, 2, 3, 4};
  std::vector<float> b = {5, 6};
  ShardedFixture() {
    std::vector<SafetensorsWriteTensor> one = {
        {"a", SafetensorsDType::kF32, {2, 2}, std::as_bytes(std::span(a))}};
    REQUIRE(WriteSafetensors(dir.File("model-00001-of-00002.safetensors"), one).ok());
    WriteFile(dir.File("model-00002-of-00002.safetensors"),
              Bytes(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                    FloatBytes({5, 6, 7})));
  }
  void WriteIndex(const std::string& weight_map) const {
    WriteFile(dir.File("model.safetensors.index.json"),
              R"({"metadata": {"total_size": 28}, "weight_map": )" + weight_map + "}");
  }
};

TEST_CASE("safetensors: sharded index, opened by file or by folder") {
  ShardedFixture fx;
  fx.WriteIndex(R"({"a": "model-00001-of-00002.safetensors",
                    "b": "model-00002-of-00002.safetensors",
                    "c": "model-00002-of-00002.safetensors"})");
  for (const std::string& path :
       {fx.dir.File("model.safetensors.index.json"), fx.dir.path().string()}) {
    CAPTURE(path);
    auto store = TensorStore::Open(path);
    REQUIRE(store.ok());
    CHECK((*store)->files().size() == 2);
    CHECK((*store)->size() == 3);
    CHECK((*store)->Names() == std::vector<std::string>{"a", "b", "c"});
    CHECK(Contains((*store)->description(), "2 shards"));
    const SafetensorsTensor* b = (*store)->Find("b");
    REQUIRE(b != nullptr);
    float v[2];
    std::memcpy(v, b->data, 8);
    CHECK(v[1] == 6.0f);
    CHECK(Contains(*b->file, "model-00002-of-00002"));
    CHECK((*store)->Find("zzz") == nullptr);
  }
}

TEST_CASE("safetensors: sharded index errors") {
  ShardedFixture fx;
  const std::string index = fx.dir.File("model.safetensors.index.json");
  SUBCASE("the index puts a tensor in the wrong shard") {
    fx.WriteIndex(R"({"a": "model-00002-of-00002.safetensors"})");
    auto store = TensorStore::Open(index);
    CHECK(!store.ok());
    CHECK(Contains(store.status().message(), "'a'"));
  }
  SUBCASE("a shard is missing") {
    fx.WriteIndex(R"({"a": "model-00001-of-00002.safetensors", "z": "gone.safetensors"})");
    auto store = TensorStore::Open(index);
    CHECK(store.status().code() == StatusCode::kNotFound);
    CHECK(Contains(store.status().message(), "gone.safetensors"));
  }
  SUBCASE("a shard path leaves the folder") {
    fx.WriteIndex(R"({"a": "../elsewhere.safetensors"})");
    auto store = TensorStore::Open(index);
    CHECK(!store.ok());
    CHECK(Contains(store.status().message(), "inside the checkpoint's folder"));
  }
  SUBCASE("no weight_map") {
    WriteFile(index, R"({"metadata": {}})");
    auto store = TensorStore::Open(index);
    CHECK(!store.ok());
    CHECK(Contains(store.status().message(), "weight_map"));
  }
  SUBCASE("a tensor in two shards") {
    WriteFile(fx.dir.File("dup.safetensors"),
              Bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", FloatBytes({9})));
    fx.WriteIndex(R"({"a": "model-00001-of-00002.safetensors", "x": "dup.safetensors"})");
    auto store = TensorStore::Open(index);
    CHECK(!store.ok());
    CHECK(Contains(store.status().message(), "'a' is in both"));
  }
  SUBCASE("not JSON") {
    WriteFile(index, "{oops");
    auto store = TensorStore::Open(index);
    CHECK(!store.ok());
    CHECK(Contains(store.status().message(), "model.safetensors.index.json"));
  }
}

TEST_CASE("safetensors: a folder with model.safetensors, and one without") {
  TempDir dir;
  WriteFile(dir.File("model.safetensors"),
            Bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", FloatBytes({1})));
  auto store = TensorStore::Open(dir.path().string());
  REQUIRE(store.ok());
  CHECK((*store)->Names() == std::vector<std::string>{"w"});

  TempDir empty;
  WriteFile(empty.File("weights.safetensors"), "");
  auto none = TensorStore::Open(empty.path().string());
  CHECK(none.status().code() == StatusCode::kNotFound);
  CHECK(Contains(none.status().message(), "found: weights.safetensors"));
  CHECK(TensorStore::Open(empty.File("nothing")).status().code() == StatusCode::kNotFound);
}

TEST_CASE("safetensors: the mamba1-tiny fixture parses and matches its config.json") {
  const std::string shared = testing::SharedDir();
  if (shared.empty()) {
    MESSAGE("skipped: the shared fixtures folder (" RECUR_SHARED_DIR ") is absent");
    return;
  }
  const fs::path dir = fs::path(shared) / "fixtures" / "mamba1-tiny";
  auto store = TensorStore::Open(dir.string());
  REQUIRE(store.ok());
  auto config = HfConfig::Load((dir / "config.json").string());
  REQUIRE(config.ok());
  const int64_t d_model = config->Int("hidden_size").value();
  const int64_t layers = config->Int("num_hidden_layers").value();
  const int64_t vocab = config->Int("vocab_size").value();
  const int64_t d_state = config->Int("state_size").value();
  const int64_t d_conv = config->Int("conv_kernel").value();
  const int64_t d_inner = config->Int("intermediate_size").value();
  const int64_t dt_rank = config->Int("time_step_rank").value();
  CHECK(config->Bool("tie_word_embeddings").value() == true);

  // One embedding, one final norm, and ten tensors per layer; no lm_head (tied).
  CHECK((*store)->size() == static_cast<size_t>(2 + 10 * layers));
  auto shape_of = [&](const std::string& name) {
    const SafetensorsTensor* t = (*store)->Find(name);
    REQUIRE_MESSAGE(t != nullptr, name);
    CHECK(t->dtype == SafetensorsDType::kF32);
    return t->shape;
  };
  using Shape = std::vector<int64_t>;
  CHECK(shape_of("backbone.embeddings.weight") == Shape{vocab, d_model});
  CHECK(shape_of("backbone.norm_f.weight") == Shape{d_model});
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    CAPTURE(p);
    CHECK(shape_of(p + "norm.weight") == Shape{d_model});
    CHECK(shape_of(p + "mixer.in_proj.weight") == Shape{2 * d_inner, d_model});
    CHECK(shape_of(p + "mixer.conv1d.weight") == Shape{d_inner, 1, d_conv});
    CHECK(shape_of(p + "mixer.conv1d.bias") == Shape{d_inner});
    CHECK(shape_of(p + "mixer.x_proj.weight") == Shape{dt_rank + 2 * d_state, d_inner});
    CHECK(shape_of(p + "mixer.dt_proj.weight") == Shape{d_inner, dt_rank});
    CHECK(shape_of(p + "mixer.dt_proj.bias") == Shape{d_inner});
    CHECK(shape_of(p + "mixer.A_log") == Shape{d_inner, d_state});
    CHECK(shape_of(p + "mixer.D") == Shape{d_inner});
    CHECK(shape_of(p + "mixer.out_proj.weight") == Shape{d_model, d_inner});
  }
  // The data is real float32: D is initialised to ones.
  const SafetensorsTensor* d = (*store)->Find("backbone.layers.0.mixer.D");
  float first;
  std::memcpy(&first, d->data, 4);
  CHECK(first == 1.0f);
  CHECK((*store)->files()[0]->metadata().at("format") == "pt");
}

}  // namespace
}  // namespace recur
