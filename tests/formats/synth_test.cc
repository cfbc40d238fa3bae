// recur synth: presets at published shapes, deterministic bytes, loadable models.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "formats/recur_file.h"
#include "formats/synth.h"
#include "tests/test_util.h"

namespace recur {
namespace {

using testing::Contains;
using testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("Synth presets have the published shapes") {
  const SynthPreset* m130 = FindSynthPreset("mamba-130m");
  REQUIRE(m130 != nullptr);
  fb::ModelT m = m130->make(m130->layers);
  CHECK(m.d_model == 768);
  CHECK(m.layers.size() == 24);
  CHECK(m.vocab_size == 50280);
  const auto* s = m.layers[0]->block.AsMamba1Spec();
  REQUIRE(s != nullptr);
  CHECK(s->d_inner == 1536);
  CHECK(s->d_state == 16);
  CHECK(s->dt_rank == 48);

  const SynthPreset* m2 = FindSynthPreset("mamba2-2.7b");
  REQUIRE(m2 != nullptr);
  fb::ModelT m2m = m2->make(m2->layers);
  CHECK(m2m.d_model == 2560);
  CHECK(m2m.layers.size() == 64);
  const auto* s2 = m2m.layers[0]->block.AsMamba2Spec();
  REQUIRE(s2 != nullptr);
  CHECK(s2->n_heads == 80);
  CHECK(s2->head_dim == 64);
  CHECK(s2->d_state == 128);
  CHECK(FindSynthPreset("mamba-9b") == nullptr);
}

TEST_CASE("Synth writes the same bytes for the same seed, and loadable files for every dtype") {
  TempDir dir;
  for (const char* preset : {"mamba-tiny", "mamba2-tiny"}) {
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
      const std::string name = preset;
    CAPTURE(name);
      CAPTURE(DTypeName(dtype));
      SynthOptions o;
      o.preset = preset;
      o.dtype = dtype;
      o.output = dir.File("a.recur");
      auto a = Synthesize(o);
      REQUIRE_MESSAGE(a.ok(), a.status().message());
      o.output = dir.File("b.recur");
      REQUIRE(Synthesize(o).ok());
      CHECK(ReadAll(dir.File("a.recur")) == ReadAll(dir.File("b.recur")));
      o.seed = 2;
      o.output = dir.File("c.recur");
      REQUIRE(Synthesize(o).ok());
      CHECK(ReadAll(dir.File("a.recur")) != ReadAll(dir.File("c.recur")));
      auto file = RecurFile::Open(dir.File("a.recur"));
      REQUIRE_MESSAGE(file.ok(), file.status().message());
      CHECK((*file)->model().layers()->size() == 2);
      if (dtype != DType::kF32) CHECK(a->bytes_by_dtype[static_cast<int>(dtype)] > 0);
    }
  }
}

TEST_CASE("Synth refuses unknown presets, bad dtypes and layer counts with a clear error") {
  TempDir dir;
  SynthOptions o;
  o.output = dir.File("x.recur");
  o.preset = "mamba-9b";
  auto r = Synthesize(o);
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.status().message(), "unknown preset 'mamba-9b'"));
  CHECK(Contains(r.status().message(), "mamba-130m"));
  o.preset = "mamba-tiny";
  o.dtype = DType::kI32;
  r = Synthesize(o);
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.status().message(), "i32"));
  o.dtype = DType::kF32;
  o.layers = 0;
  r = Synthesize(o);
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.status().message(), "layers"));
  o.layers = 3;
  REQUIRE(Synthesize(o).ok());
  auto file = RecurFile::Open(o.output);
  REQUIRE(file.ok());
  CHECK((*file)->model().layers()->size() == 3);
}

}  // namespace
}  // namespace recur
