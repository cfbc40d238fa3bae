// Tests formats/rwkv_cpp.h: the shared rwkv.cpp files parse to exactly the records tensors.txt
// lists (names, types, shapes, data offsets); versions are told apart by tensor names; the
// converter's transformations are undone (x_rwkvag split, exp/log parameters inverted, ln0 folded
// into the embedding); malformed files are refused with errors that say what is wrong.
#include "formats/rwkv_cpp.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "formats/block_tensors.h"
#include "formats/convert.h"
#include "formats/native_spec.h"
#include "formats/recur_file.h"
#include "tests/test_util.h"

namespace recur {
namespace {

using testing::Contains;
using testing::TempDir;

std::string RwkvDir() {
  const std::string shared = testing::SharedDir();
  if (shared.empty()) {
    MESSAGE("skipped: the shared models folder is absent");
    return "";
  }
  return shared + "/models/rwkv-tiny";
}

const char* const kFiles[] = {"tiny-rwkv-4v0-660K-FP32.bin", "tiny-rwkv-5v1-730K-FP32.bin",
                              "tiny-rwkv-5v2-730K-FP32.bin", "tiny-rwkv-6v0-1m-FP32.bin",
                              "tiny-rwkv-7v0-834K-FP32.bin"};

std::vector<std::byte> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

TEST_CASE("rwkv_cpp: the shared files parse to the records tensors.txt lists") {
  const std::string dir = RwkvDir();
  if (dir.empty()) return;
  // tensors.txt: "== file" sections, then rows "name type (ne) (shape) offset".
  std::ifstream listing(dir + "/tensors.txt");
  REQUIRE(listing.good());
  struct Row {
    std::string name, type;
    long long offset;
  };
  std::map<std::string, std::vector<Row>> rows;
  std::string line, current;
  while (std::getline(listing, line)) {
    if (line.rfind("== ", 0) == 0) {
      current = line.substr(3);
      continue;
    }
    if (current.empty() || line.empty() || line.rfind("header", 0) == 0 ||
        line.rfind("name", 0) == 0 || line.rfind("tensors:", 0) == 0 || line[0] == '#') {
      continue;
    }
    std::istringstream fields(line);
    Row r;
    fields >> r.name >> r.type;
    const size_t last_space = line.find_last_of(' ');
    r.offset = std::stoll(line.substr(last_space + 1));
    rows[current].push_back(r);
  }
  const size_t counts[] = {78, 246, 270, 342, 339};
  const int versions[] = {4, 5, 5, 6, 7};
  const int minors[] = {0, 1, 2, 0, 0};
  for (size_t i = 0; i < 5; ++i) {
    CAPTURE(kFiles[i]);
    auto f = ReadRwkvCpp(dir + "/" + kFiles[i]);
    REQUIRE_MESSAGE(f.ok(), f.status().message());
    CHECK(f->n_vocab == 256);
    CHECK(f->tensors.size() == counts[i]);
    const RwkvCppVersion v = DetectRwkvCppVersion(*f);
    CHECK(v.version == versions[i]);
    CHECK(v.minor == minors[i]);
    const std::vector<Row>& want = rows[kFiles[i]];
    REQUIRE(want.size() == f->tensors.size());
    for (size_t j = 0; j < want.size(); ++j) {
      CAPTURE(want[j].name);
      CHECK(f->tensors[j].name == want[j].name);
      CHECK(f->tensors[j].type == 0);
      CHECK(want[j].type == "FP32");
      CHECK(f->tensors[j].data - f->bytes.data() == want[j].offset);
    }
  }
  auto v7 = ReadRwkvCpp(dir + "/" + kFiles[4]);
  REQUIRE(v7.ok());
  const RwkvCppTensor* x = v7->Find("blocks.0.att.x_rwkvag");
  REQUIRE(x != nullptr);
  CHECK(x->shape == std::vector<int64_t>{6, 1, 64});
  CHECK(v7->Find("blocks.0.att.v1") == nullptr);
  CHECK(v7->Find("blocks.1.att.v1") != nullptr);
}

float At(const TensorView& t, size_t i) { return reinterpret_cast<const float*>(t.data)[i]; }

TEST_CASE("rwkv_cpp: conversion restores the official parameters") {
  const std::string dir = RwkvDir();
  if (dir.empty()) return;
  TempDir tmp;
  const auto convert = [&](const char* file) {
    ConvertOptions o;
    o.source = dir + "/" + file;
    o.output = tmp.File(std::string(file) + ".recur");
    auto report = Convert(o);
    REQUIRE_MESSAGE(report.ok(), report.status().message());
    CHECK(report->source_kind == SourceKind::kRwkvCpp);
    CHECK(report->unused_source_tensors.empty());
    auto src = ReadRwkvCpp(o.source);
    REQUIRE(src.ok());
    auto out = RecurFile::Open(o.output);
    REQUIRE_MESSAGE(out.ok(), out.status().message());
    return std::make_pair(std::move(src).value(), std::move(out).value());
  };
  // rwkv.cpp data is not 4-byte aligned in the file: the test reads aligned copies.
  std::map<std::string, std::vector<float>> copies;
  const auto src_f32 = [&copies](const RwkvCppFile& f, const std::string& name) {
    const RwkvCppTensor* t = f.Find(name);
    REQUIRE_MESSAGE(t != nullptr, name);
    std::vector<float>& v = copies[name];
    v.resize(t->size / sizeof(float));
    std::memcpy(v.data(), t->data, v.size() * sizeof(float));
    return static_cast<const float*>(v.data());
  };

  SUBCASE("v7: x_rwkvag split in r, w, k, v, a, g order; LoRA widths; eps 64e-5") {
    auto [src, out] = convert(kFiles[4]);
    const fb::Model& m = out->model();
    CHECK(m.architecture()->str() == "rwkv7");
    REQUIRE(m.layers()->size() == 12);
    const fb::RwkvSpec* s0 = m.layers()->Get(0)->block_as_RwkvSpec();
    const fb::RwkvSpec* s1 = m.layers()->Get(1)->block_as_RwkvSpec();
    REQUIRE(s0 != nullptr);
    CHECK(s0->version() == 7);
    CHECK(s0->n_heads() == 1);
    CHECK(s0->head_size() == 64);
    CHECK(s0->lora_decay() == 32);
    CHECK(s0->lora_v() == 0);
    CHECK(s1->lora_v() == 32);
    CHECK(s0->group_norm_eps() == 64e-5f);
    CHECK(m.tokenizer()->kind() == fb::TokenizerKind::Bytes);
    const float* x = src_f32(src, "blocks.2.att.x_rwkvag");
    const char* names[] = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};
    for (size_t row = 0; row < 6; ++row) {
      const TensorView* t = out->Find(std::string("layers.2.att.") + names[row]);
      REQUIRE(t != nullptr);
      CHECK(std::memcmp(t->data, x + row * 64, 64 * sizeof(float)) == 0);
    }
    // LoRA factors keep rwkv.cpp's [out, in] layout bit for bit.
    const TensorView* w1 = out->Find("layers.3.att.w1");
    REQUIRE(w1 != nullptr);
    CHECK(w1->shape[0] == 32);
    CHECK(std::memcmp(w1->data, src_f32(src, "blocks.3.att.w1"), 32 * 64 * 4) == 0);
    // Embedding rows are ln0(emb).
    const float* emb = src_f32(src, "emb.weight");
    const float* g = src_f32(src, "blocks.0.ln0.weight");
    const float* b = src_f32(src, "blocks.0.ln0.bias");
    const TensorView* e = out->Find("embed.weight");
    REQUIRE(e != nullptr);
    for (size_t row : {size_t{0}, size_t{34}, size_t{255}}) {
      double mean = 0, var = 0;
      for (size_t j = 0; j < 64; ++j) mean += emb[row * 64 + j];
      mean /= 64;
      for (size_t j = 0; j < 64; ++j) var += std::pow(emb[row * 64 + j] - mean, 2);
      var /= 64;
      for (size_t j = 0; j < 64; ++j) {
        const double want = (emb[row * 64 + j] - mean) / std::sqrt(var + 1e-5) * g[j] + b[j];
        CHECK(std::fabs(At(*e, row * 64 + j) - want) <= 1e-6 * (1 + std::fabs(want)));
      }
    }
  }
  SUBCASE("v4: time_decay stored as -exp(w)") {
    auto [src, out] = convert(kFiles[0]);
    const float* stored = src_f32(src, "blocks.1.att.time_decay");
    const TensorView* w = out->Find("layers.1.att.time_decay");
    REQUIRE(w != nullptr);
    for (size_t c = 0; c < 128; ++c) {
      const double back = -std::exp(double{At(*w, c)});
      CHECK(std::fabs(back - stored[c]) <= 3e-7 * std::fabs(stored[c]) + 1e-30);
    }
    CHECK(out->model().layers()->Get(0)->block_as_RwkvSpec()->n_heads() == 0);
  }
  SUBCASE("v5.1: decay exp(-exp(w)) and bonus exp(u) per head") {
    auto [src, out] = convert(kFiles[1]);
    const float* decay = src_f32(src, "blocks.4.att.time_decay");
    const float* first = src_f32(src, "blocks.4.att.time_first");
    const TensorView* w = out->Find("layers.4.att.time_decay");
    const TensorView* u = out->Find("layers.4.att.time_first");
    REQUIRE(w != nullptr);
    REQUIRE(u != nullptr);
    CHECK(w->rank == 1);
    CHECK(w->shape[0] == 8);
    for (size_t h = 0; h < 8; ++h) {
      CHECK(std::fabs(std::exp(-std::exp(double{At(*w, h)})) - decay[h]) <= 3e-7 * decay[h]);
      CHECK(std::fabs(std::exp(double{At(*u, h)}) - first[h]) <= 3e-7 * first[h]);
    }
  }
  SUBCASE("v5.2 and v6: time_faaaa unchanged; v6 LoRA widths") {
    auto [src, out] = convert(kFiles[2]);
    const TensorView* u = out->Find("layers.0.att.time_faaaa");
    REQUIRE(u != nullptr);
    CHECK(u->rank == 2);
    CHECK(u->shape[0] == 8);
    CHECK(u->shape[1] == 8);
    CHECK(std::memcmp(u->data, src_f32(src, "blocks.0.att.time_faaaa"), 64 * 4) == 0);
    CHECK(out->model().layers()->Get(0)->block_as_RwkvSpec()->minor() == 2);
    auto [src6, out6] = convert(kFiles[3]);
    const fb::RwkvSpec* s = out6->model().layers()->Get(0)->block_as_RwkvSpec();
    CHECK(s->lora_mix() == 32);
    CHECK(s->lora_decay() == 64);
    CHECK(s->d_ffn() == 224);
  }
}

// A minimal rwkv.cpp file: header, then records given as (name, type, ggml dims, data bytes).
struct Record {
  std::string name;
  int32_t type = 0;
  std::vector<int32_t> dims;
  size_t data_bytes = 0;
  int32_t n_dims_override = -1;
  int32_t name_len_override = -1;
};

std::vector<std::byte> MakeFile(const std::vector<Record>& records, uint32_t magic = 0x67676d66,
                                int32_t version = 101, int32_t n_layer = 1) {
  std::vector<std::byte> out;
  const auto put = [&](int32_t v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + 4);
  };
  put(static_cast<int32_t>(magic));
  put(version);
  put(256);
  put(64);
  put(n_layer);
  put(0);
  for (const Record& r : records) {
    put(r.n_dims_override >= 0 ? r.n_dims_override : static_cast<int32_t>(r.dims.size()));
    put(r.name_len_override >= 0 ? r.name_len_override : static_cast<int32_t>(r.name.size()));
    put(r.type);
    for (int32_t d : r.dims) put(d);
    for (char c : r.name) out.push_back(static_cast<std::byte>(c));
    out.insert(out.end(), r.data_bytes, std::byte{0});
  }
  return out;
}

Status ParseStatus(std::vector<std::byte> bytes) {
  return ParseRwkvCpp(std::move(bytes), "test.bin").status();
}

TEST_CASE("rwkv_cpp: malformed files are refused with clear errors") {
  const Record ok{"emb.weight", 0, {64, 256}, 64 * 256 * 4};
  CHECK(ParseStatus(MakeFile({ok})).ok());
  CHECK(Contains(ParseStatus({}).message(), "shorter than rwkv.cpp's 24-byte header"));
  CHECK(Contains(ParseStatus(MakeFile({ok}, 0x67676d6c)).message(), "bad magic 0x67676d6c"));
  CHECK(ParseStatus(MakeFile({ok}, 0x67676d66, 99)).code() == StatusCode::kUnsupported);
  CHECK(Contains(ParseStatus(MakeFile({ok}, 0x67676d66, 101, 0)).message(), "n_layer 0"));
  CHECK(Contains(ParseStatus(MakeFile({})).message(), "no tensor records"));
  Record bad = ok;
  bad.n_dims_override = 4;
  CHECK(Contains(ParseStatus(MakeFile({bad})).message(), "n_dims 4"));
  bad = ok;
  bad.name_len_override = 0;
  CHECK(Contains(ParseStatus(MakeFile({bad})).message(), "name length 0"));
  bad = ok;
  bad.name_len_override = 1 << 30;
  CHECK(Contains(ParseStatus(MakeFile({bad})).message(), "name length"));
  bad = ok;
  bad.dims = {64, -256};
  CHECK(Contains(ParseStatus(MakeFile({bad})).message(), "dimension 1 is -256"));
  bad = ok;
  bad.data_bytes -= 1;
  Status s = ParseStatus(MakeFile({bad}));
  CHECK(Contains(s.message(), "'emb.weight'"));
  CHECK(Contains(s.message(), "truncated"));
  bad = ok;
  bad.type = 9;
  s = ParseStatus(MakeFile({bad}));
  CHECK(s.code() == StatusCode::kUnsupported);
  CHECK(Contains(s.message(), "Q8_0"));
  CHECK(Contains(ParseStatus(MakeFile({ok, ok})).message(), "appears twice"));
  // Every prefix of a small file fails cleanly (or, at record boundaries, parses).
  const std::vector<std::byte> two =
      MakeFile({ok, Record{"head.weight", 1, {64, 256}, 64 * 256 * 2}});
  for (size_t cut = 0; cut < two.size(); cut += 7) {
    CAPTURE(cut);
    (void)ParseStatus(std::vector<std::byte>(two.begin(), two.begin() + cut));
  }
}

TEST_CASE("rwkv_cpp: real files with a truncated end, a wrong shape or a missing tensor") {
  const std::string dir = RwkvDir();
  if (dir.empty()) return;
  TempDir tmp;
  const std::vector<std::byte> v7 = ReadBytes(dir + "/" + kFiles[4]);
  auto parsed = ParseRwkvCpp(v7, "v7");
  REQUIRE(parsed.ok());
  const auto convert_bytes = [&](const std::vector<std::byte>& bytes) {
    const std::string path = tmp.File("edited.bin");
    {
      std::ofstream o(path, std::ios::binary);
      o.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    }
    ConvertOptions o;
    o.source = path;
    o.output = tmp.File("edited.recur");
    return Convert(o).status();
  };
  // Cut inside the last record's data.
  Status s = convert_bytes(std::vector<std::byte>(v7.begin(), v7.end() - 100));
  CHECK(!s.ok());
  CHECK(Contains(s.message(), "truncated"));
  // Swap the dims of blocks.3.ffn.key.weight ([64, 256] -> [256, 64]).
  const RwkvCppTensor* fk = parsed->Find("blocks.3.ffn.key.weight");
  REQUIRE(fk != nullptr);
  const size_t dims_at = static_cast<size_t>(fk->data - parsed->bytes.data()) - fk->name.size() - 8;
  std::vector<std::byte> swapped = v7;
  std::memcpy(swapped.data() + dims_at, v7.data() + dims_at + 4, 4);
  std::memcpy(swapped.data() + dims_at + 4, v7.data() + dims_at, 4);
  s = convert_bytes(swapped);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(Contains(s.message(), "blocks.3.ffn.key.weight"));
  CHECK(Contains(s.message(), "expected shape [256, 64]"));
  // Rename blocks.5.att.output.weight.
  const RwkvCppTensor* o = parsed->Find("blocks.5.att.output.weight");
  REQUIRE(o != nullptr);
  std::vector<std::byte> renamed = v7;
  const size_t name_at = static_cast<size_t>(o->data - parsed->bytes.data()) - o->name.size();
  renamed[name_at + o->name.size() - 6] = std::byte{'X'};  // "weight" -> "Xeight"
  s = convert_bytes(renamed);
  CHECK(!s.ok());
  CHECK(Contains(s.message(), "'blocks.5.att.output.weight'"));
  CHECK(Contains(s.message(), "missing"));
}

TEST_CASE("rwkv_cpp: native specs take rwkv layers with LoRA widths and list their tensors") {
  const char* text = R"({
    "d_model": 64, "input": {"kind": "tokens", "vocab_size": 256}, "final_norm": "layernorm",
    "tokenizer": {"kind": "bytes"},
    "layers": [
      {"kind": "rwkv", "version": 7, "n_heads": 2, "head_size": 32, "d_ffn": 128, "norm": "none",
       "group_norm_eps": 64e-5, "lora_decay": 8, "lora_a": 8, "lora_g": 16},
      {"kind": "rwkv", "version": 7, "n_heads": 2, "head_size": 32, "d_ffn": 128, "norm": "none",
       "lora_decay": 8, "lora_a": 8, "lora_v": 4, "lora_g": 16},
      {"kind": "rwkv", "version": 6, "n_heads": 2, "head_size": 32, "d_ffn": 128, "norm": "none",
       "lora_mix": 4, "lora_decay": 8},
      {"kind": "rwkv", "version": 5, "minor": 2, "n_heads": 2, "head_size": 32, "d_ffn": 128,
       "norm": "none"},
      {"kind": "rwkv", "version": 4, "d_ffn": 128, "norm": "none"}]})";
  auto spec = ParseNativeSpec(text, "spec.json");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  const fb::RwkvSpecT* s1 = spec->model.layers[1]->block.AsRwkvSpec();
  REQUIRE(s1 != nullptr);
  CHECK(s1->lora_v == 4);
  CHECK(s1->lora_g == 16);
  CHECK(spec->model.layers[0]->block.AsRwkvSpec()->group_norm_eps == 64e-5f);
  CHECK(spec->model.layers[2]->block.AsRwkvSpec()->lora_mix == 4);
  auto list = ExpectedTensorsOf(spec->model);
  REQUIRE_MESSAGE(list.ok(), list.status().message());
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const ExpectedTensor& e : *list) shapes[e.name] = e.shape;
  CHECK(shapes.count("layers.0.att.x_r") == 1);
  CHECK(shapes.count("layers.0.att.v1") == 0);
  CHECK(shapes["layers.1.att.v1"] == std::vector<int64_t>{4, 64});
  CHECK(shapes["layers.1.att.r_k"] == std::vector<int64_t>{2, 32});
  CHECK(shapes["layers.2.att.time_maa_w2"] == std::vector<int64_t>{5, 64, 4});
  CHECK(shapes["layers.3.att.time_decay"] == std::vector<int64_t>{2, 32});
  CHECK(shapes["layers.4.att.time_first"] == std::vector<int64_t>{64});
  CHECK(shapes.count("layers.4.att.ln_x.weight") == 0);
  CHECK(shapes.count("layers.4.ffn.receptance.weight") == 1);
  CHECK(shapes.count("layers.0.ffn.receptance.weight") == 0);

  // Inconsistent specs name what is wrong.
  const auto error_of = [](const std::string& layer) {
    const std::string t = R"({"d_model": 64, "input": {"kind": "tokens", "vocab_size": 256},
      "layers": [)" + layer + "]}";
    auto s = ParseNativeSpec(t, "spec.json");
    if (!s.ok()) return s.status().message();
    auto l = ExpectedTensorsOf(s->model);
    return l.ok() ? std::string() : l.status().message();
  };
  CHECK(Contains(error_of(R"({"kind": "rwkv", "version": 5, "n_heads": 3, "head_size": 32,
      "d_ffn": 8, "norm": "none"})"), "n_heads * head_size (3 * 32) must equal d_model (64)"));
  CHECK(Contains(error_of(R"({"kind": "rwkv", "version": 7, "n_heads": 2, "head_size": 32,
      "d_ffn": 8, "norm": "none"})"), "lora_decay must be positive"));
  CHECK(Contains(error_of(R"({"kind": "rwkv", "version": 4, "d_ffn": 8})"),
                 "the layer norm must be none"));
}

}  // namespace
}  // namespace recur
