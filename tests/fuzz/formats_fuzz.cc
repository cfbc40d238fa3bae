// libFuzzer target for the importers' readers. The first byte picks the reader, the rest is its
// input: a safetensors file, an rwkv.cpp file, a tokenizer.json (then used to encode and decode),
// a config.json through every Hugging Face mapping, or text through the real GPT-NeoX tokenizer
// (when ../shared is present). Each gives a result or a clean error, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flatbuffers/flatbuffers.h"
#include "formats/convert.h"
#include "formats/rwkv_cpp.h"
#include "formats/safetensors.h"
#include "formats/tokenizer.h"
#include "formats/tokenizer_json.h"

namespace {

std::unique_ptr<recur::Tokenizer> g_neox;

std::unique_ptr<recur::Tokenizer> Build(const recur::fb::TokenizerT& t,
                                        flatbuffers::FlatBufferBuilder* fbb) {
  fbb->Finish(recur::fb::Tokenizer::Pack(*fbb, &t));
  auto tok = recur::Tokenizer::FromFlatbuffer(
      *flatbuffers::GetRoot<recur::fb::Tokenizer>(fbb->GetBufferPointer()));
  return tok.ok() ? std::move(tok).value() : nullptr;
}

void RoundTrip(const recur::Tokenizer& tok, std::string_view text) {
  std::vector<int32_t> ids;
  if (!tok.Encode(text, &ids).ok()) return;
  (void)tok.Decode(ids);
}

void Refusal(const recur::Status& s) {
  if (!s.ok() && s.message().empty()) __builtin_trap();  // Every refusal must say why.
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string path = RECUR_SHARED_DIR "/tokenizers/gpt-neox-20b/tokenizer.json";
  if (std::filesystem::exists(path)) {
    auto t = recur::ImportTokenizerJson(path);
    if (t.ok()) {
      flatbuffers::FlatBufferBuilder fbb;
      g_neox = Build(*t, &fbb);
      // The tokenizer keeps no pointer into the flatbuffer (it copies its tables).
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t* p = data + 1;
  const size_t n = size - 1;
  const std::string_view text(reinterpret_cast<const char*>(p), n);
  switch (data[0] % 5) {
    case 0: {
      auto f = recur::SafetensorsFile::FromBytes(p, n, "fuzz.safetensors");
      if (!f.ok()) Refusal(f.status());
      break;
    }
    case 1: {
      std::vector<std::byte> bytes(n);
      if (n) std::memcpy(bytes.data(), p, n);
      auto f = recur::ParseRwkvCpp(std::move(bytes), "fuzz.bin");
      if (f.ok()) {
        (void)recur::DetectRwkvCppVersion(*f);
      } else {
        Refusal(f.status());
      }
      break;
    }
    case 2: {
      auto t = recur::ImportTokenizerJsonText(text, "fuzz/tokenizer.json");
      if (!t.ok()) {
        Refusal(t.status());
        break;
      }
      flatbuffers::FlatBufferBuilder fbb;
      if (auto tok = Build(*t, &fbb)) RoundTrip(*tok, "Hello, world! 123 \xc3\xa9\xe2\x82\xac");
      break;
    }
    case 3: {
      auto config = recur::HfConfig::Parse(text, "fuzz/config.json");
      if (!config.ok()) {
        Refusal(config.status());
        break;
      }
      for (const recur::HfArchitecture& a : recur::HfArchitectures()) {
        auto mapping = a.map(*config);
        if (mapping.ok()) {
          (void)recur::ExpectedTensorsOf(mapping->model);
        } else {
          Refusal(mapping.status());
        }
      }
      break;
    }
    case 4:
      if (g_neox) RoundTrip(*g_neox, text);
      break;
  }
  return 0;
}
