// The .recur writer and reader: round trips for every dtype, and no crash on damaged files.
#include "formats/recur_file.h"

#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>
#include <vector>

#include "formats/recur_writer.h"
#include "tests/test_util.h"

namespace recur {
namespace {

// A small model description with one mlp layer, a tokenizer and metadata.
fb::ModelT SmallModel() {
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = 8;
  m.vocab_size = 5;
  m.output_size = 5;
  m.input_kind = fb::InputKind::Tokens;
  m.output_kind = fb::OutputKind::Logits;
  m.tie_embeddings = true;
  auto layer = std::make_unique<fb::LayerT>();
  fb::MlpSpecT mlp;
  mlp.d_ff = 32;
  mlp.glu = true;
  layer->block.Set(std::move(mlp));
  m.layers.push_back(std::move(layer));
  m.tokenizer = std::make_unique<fb::TokenizerT>();
  m.tokenizer->kind = fb::TokenizerKind::Bytes;
  m.tokenizer->tokens = {"a", "b"};
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = "source";
  kv->value = "unit test";
  m.metadata.push_back(std::move(kv));
  return m;
}

template <typename T>
std::vector<T> Iota(size_t n, T start) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(start + static_cast<T>(i % 100));
  return v;
}

struct Payload {
  std::vector<float> f32 = Iota<float>(3 * 7, 0.5f);
  std::vector<uint16_t> f16 = Iota<uint16_t>(5, 0x3c00);
  std::vector<uint16_t> bf16 = Iota<uint16_t>(2 * 3 * 4, 0x3f80);
  std::vector<int8_t> q8 = Iota<int8_t>(2 * 64, -50);
  std::vector<uint16_t> q8_scales_f16 = Iota<uint16_t>(4, 0x2000);
  std::vector<int8_t> q8b = Iota<int8_t>(32, 3);
  std::vector<float> q8b_scales_f32 = {0.25f};
  std::vector<double> f64 = Iota<double>(9, -1.0);
  std::vector<int32_t> i32 = Iota<int32_t>(1, 42);
  std::vector<uint8_t> u8 = Iota<uint8_t>(65, 7);
};

Status AddAll(RecurWriter& w, const Payload& p) {
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory("f32", DType::kF32, {3, 7}, p.f32.data()));
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory("f16", DType::kF16, {5}, p.f16.data()));
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory("bf16", DType::kBF16, {2, 3, 4}, p.bf16.data()));
  auto copy = [](const void* src) {
    return [src](std::span<std::byte> out) {
      std::memcpy(out.data(), src, out.size());
      return Status::Ok();
    };
  };
  RECUR_RETURN_IF_ERROR(w.AddQ8Tensor("q8", {2, 64}, DType::kF16, copy(p.q8.data()),
                                      copy(p.q8_scales_f16.data())));
  RECUR_RETURN_IF_ERROR(w.AddQ8Tensor("q8b", {32}, DType::kF32, copy(p.q8b.data()),
                                      copy(p.q8b_scales_f32.data())));
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory("f64", DType::kF64, {3, 3}, p.f64.data()));
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory("scalar_i32", DType::kI32, {}, p.i32.data()));
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory("u8", DType::kU8, {65}, p.u8.data()));
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory("empty", DType::kF32, {0, 4}, nullptr));
  return Status::Ok();
}

std::vector<char> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

template <typename T>
void CheckTensor(const RecurFile& f, const char* name, DType dtype, const std::vector<T>& want) {
  CAPTURE(name);
  const TensorView* t = f.Find(name);
  REQUIRE(t != nullptr);
  CHECK(t->dtype == dtype);
  CHECK(reinterpret_cast<uintptr_t>(t->data) % kRecurAlignment == 0);
  REQUIRE(t->size == want.size() * sizeof(T));
  CHECK(std::memcmp(t->data, want.data(), t->size) == 0);
}

TEST_CASE("writer -> reader round trip for every dtype, mapped and read") {
  testing::TempDir dir;
  const std::string path = dir.File("m.recur");
  Payload p;
  RecurWriter w(SmallModel());
  REQUIRE(AddAll(w, p).ok());
  uint64_t last_done = 0, last_total = 0;
  REQUIRE(w.Write(path, [&](uint64_t d, uint64_t t) { last_done = d, last_total = t; }).ok());
  CHECK(last_done == last_total);
  CHECK(last_total == w.data_bytes());
  CHECK(std::filesystem::file_size(path) % kRecurAlignment == 0);
  CHECK(!std::filesystem::exists(path + ".tmp"));

  for (bool use_mmap : {true, false}) {
    CAPTURE(use_mmap);
    auto r = RecurFile::Open(path, OpenOptions{.use_mmap = use_mmap});
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    const RecurFile& f = **r;
    CHECK(f.mapped() == use_mmap);
    CHECK(f.model().format_version() == kRecurFormatVersion);
    CHECK(f.model().architecture()->str() == "spec");
    CHECK(f.model().d_model() == 8);
    REQUIRE(f.model().layers()->size() == 1);
    const fb::MlpSpec* mlp = f.model().layers()->Get(0)->block_as_MlpSpec();
    REQUIRE(mlp != nullptr);
    CHECK(mlp->d_ff() == 32);
    CHECK(mlp->glu());
    CHECK(f.model().tokenizer()->tokens()->size() == 2);
    CHECK(std::string(f.Metadata("source")) == "unit test");
    CHECK(f.Metadata("absent").empty());
    CHECK(f.tensors().size() == 9);

    CheckTensor(f, "f32", DType::kF32, p.f32);
    CheckTensor(f, "f16", DType::kF16, p.f16);
    CheckTensor(f, "bf16", DType::kBF16, p.bf16);
    CheckTensor(f, "q8", DType::kQ8_0, p.q8);
    CheckTensor(f, "f64", DType::kF64, p.f64);
    CheckTensor(f, "scalar_i32", DType::kI32, p.i32);
    CheckTensor(f, "u8", DType::kU8, p.u8);
    const TensorView* bf16 = f.Find("bf16");
    CHECK(bf16->HasShape({2, 3, 4}));
    CHECK(bf16->ShapeString() == "[2, 3, 4]");
    CHECK(bf16->numel() == 24);
    const TensorView* q8 = f.Find("q8");
    CHECK(q8->scale_dtype == DType::kF16);
    CHECK(q8->block_size == 32);
    CHECK(q8->scale_size == 8);
    CHECK(std::memcmp(q8->scales, p.q8_scales_f16.data(), 8) == 0);
    CHECK(reinterpret_cast<uintptr_t>(q8->scales) % kRecurAlignment == 0);
    const TensorView* q8b = f.Find("q8b");
    CHECK(q8b->scale_dtype == DType::kF32);
    CHECK(std::memcmp(q8b->scales, p.q8b_scales_f32.data(), 4) == 0);
    CHECK(f.Find("scalar_i32")->rank == 0);
    CHECK(f.Find("empty")->numel() == 0);

    CHECK(f.Require("f32", {3, 7}).ok());
    auto missing = f.Require("nope");
    CHECK(missing.status().code() == StatusCode::kNotFound);
    CHECK(missing.status().message().find("'nope'") != std::string::npos);
    auto misshaped = f.Require("f32", {7, 3});
    CHECK(misshaped.status().message().find("[3, 7]") != std::string::npos);
  }
}

TEST_CASE("writer refuses bad tensors with a message") {
  RecurWriter w(SmallModel());
  float x = 0;
  CHECK(w.AddTensorFromMemory("a", DType::kF32, {1}, &x).ok());
  CHECK(w.AddTensorFromMemory("a", DType::kF32, {1}, &x).message().find("twice") !=
        std::string::npos);
  CHECK(!w.AddTensorFromMemory("", DType::kF32, {1}, &x).ok());
  CHECK(!w.AddTensorFromMemory("neg", DType::kF32, {-1}, &x).ok());
  CHECK(!w.AddTensorFromMemory("q", DType::kQ8_0, {32}, &x).ok());
  CHECK(!w.AddQ8Tensor("q", {33}, DType::kF16, nullptr, nullptr).ok());
  CHECK(!w.AddQ8Tensor("q", {32}, DType::kBF16, nullptr, nullptr).ok());
  // The kernels read one scale per 32 quants; other block sizes would misread the scales.
  CHECK(w.AddQ8Tensor("q", {64}, DType::kF16, nullptr, nullptr, 64).message().find("32") !=
        std::string::npos);
  testing::TempDir dir;
  CHECK(w.Write(dir.File("no/such/dir/m.recur")).code() == StatusCode::kIoError);
}

TEST_CASE("a failing fill function aborts the write and leaves no file") {
  testing::TempDir dir;
  RecurWriter w(SmallModel());
  REQUIRE(w.AddTensor("bad", DType::kF32, {4}, [](std::span<std::byte>) {
             return InvalidArgument("source unreadable");
           }).ok());
  Status s = w.Write(dir.File("m.recur"));
  CHECK(s.message().find("tensor 'bad'") != std::string::npos);
  CHECK(s.message().find("source unreadable") != std::string::npos);
  CHECK(!std::filesystem::exists(dir.File("m.recur")));
  CHECK(!std::filesystem::exists(dir.File("m.recur.tmp")));
}

TEST_CASE("open refuses missing, empty and foreign files by name") {
  testing::TempDir dir;
  auto r = RecurFile::Open(dir.File("absent.recur"));
  CHECK(r.status().code() == StatusCode::kNotFound);
  CHECK(r.status().message().find("absent.recur") != std::string::npos);
  std::ofstream(dir.File("empty.recur")).close();
  CHECK(RecurFile::Open(dir.File("empty.recur")).status().message().find("empty") !=
        std::string::npos);
  std::ofstream(dir.File("text.recur")) << "hello, this is not a model file at all";
  CHECK(RecurFile::Open(dir.File("text.recur")).status().message().find("RCUR") !=
        std::string::npos);
  CHECK(RecurFile::Open(dir.path().string()).status().code() == StatusCode::kInvalidArgument);
}

// Touches every byte of every tensor so that a view pointing outside the buffer would be caught
// (by the sanitizer build, or by a crash).
uint64_t TouchAll(const RecurFile& f) {
  uint64_t sum = 0;
  for (const TensorView& t : f.tensors()) {
    for (size_t i = 0; i < t.size; ++i) sum += static_cast<uint8_t>(t.data[i]);
    for (size_t i = 0; i < t.scale_size; ++i) sum += static_cast<uint8_t>(t.scales[i]);
    sum += t.name.size();
  }
  return sum;
}

TEST_CASE("corrupted files: truncation and byte flips give clean errors, never a crash") {
  testing::TempDir dir;
  const std::string path = dir.File("m.recur");
  Payload p;
  RecurWriter w(SmallModel());
  REQUIRE(AddAll(w, p).ok());
  REQUIRE(w.Write(path).ok());
  const std::vector<char> good = ReadAll(path);
  REQUIRE(RecurFile::FromBytes(good.data(), good.size(), "good").ok());

  // The end of the last byte any tensor needs: a truncation before it must be refused.
  auto parsed = RecurFile::FromBytes(good.data(), good.size(), "good");
  size_t needed = 0;
  for (const fb::Tensor* t : *(*parsed)->model().tensors()) {
    needed = std::max<size_t>(needed, t->offset() + t->size());
    if (t->quant()) needed = std::max<size_t>(needed, t->quant()->scale_offset() + t->quant()->scale_size());
  }

  int refused = 0;
  for (size_t len = 0; len < good.size(); ++len) {
    auto r = RecurFile::FromBytes(good.data(), len, "cut.recur");
    if (len < needed) {
      CAPTURE(len);
      REQUIRE(!r.ok());
      CHECK(r.status().message().find("cut.recur") != std::string::npos);
      ++refused;
    } else if (r.ok()) {
      TouchAll(**r);
    }
  }
  CHECK(refused == static_cast<int>(needed));

  // Every byte of the metadata, and a spread of data bytes, flipped in several ways.
  const size_t meta_end = (*parsed)->model().tensors()->Get(0)->offset();
  std::mt19937 rng(7);
  int accepted = 0, rejected = 0;
  for (size_t pos = 0; pos < good.size(); pos += (pos < meta_end ? 1 : 37)) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}, static_cast<uint8_t>(rng() | 1)}) {
      std::vector<char> bad = good;
      bad[pos] = static_cast<char>(bad[pos] ^ mask);
      auto r = RecurFile::FromBytes(bad.data(), bad.size(), "flip.recur");
      if (r.ok()) {
        TouchAll(**r);
        ++accepted;
      } else {
        CHECK(!r.status().message().empty());
        ++rejected;
      }
    }
  }
  // Flips in tensor data are harmless to the loader; many metadata flips must be caught.
  CHECK(accepted > 0);
  CHECK(rejected > 100);
  MESSAGE("byte flips: " << rejected << " refused, " << accepted << " accepted as well-formed");

  // Random garbage of many lengths, with and without the identifier.
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<char> junk(rng() % 512);
    for (char& c : junk) c = static_cast<char>(rng());
    if (junk.size() >= 8 && trial % 2 == 0) std::memcpy(junk.data() + 4, "RCUR", 4);
    auto r = RecurFile::FromBytes(junk.data(), junk.size(), "junk");
    if (r.ok()) TouchAll(**r);
  }
}

}  // namespace
}  // namespace recur
