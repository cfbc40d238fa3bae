// Tokenizers: the GPT-NeoX-20B test vectors from llama.cpp, NFC, the GPT-2 pre-tokenizer, the
// byte tokenizer, streaming decode, and the importer's refusals.
#include "formats/tokenizer.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "formats/tokenizer_json.h"
#include "tests/test_util.h"

namespace recur {
namespace {

using tokenizer_internal::NormalizeNfc;
using tokenizer_internal::PreTokenizeGpt2;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

// Packs a TokenizerT into its own flatbuffer, as it would sit inside a .recur file.
struct PackedTokenizer {
  explicit PackedTokenizer(const fb::TokenizerT& t) {
    builder.Finish(fb::Tokenizer::Pack(builder, &t));
  }
  const fb::Tokenizer& table() const {
    return *flatbuffers::GetRoot<fb::Tokenizer>(builder.GetBufferPointer());
  }
  flatbuffers::FlatBufferBuilder builder;
};

std::unique_ptr<Tokenizer> Load(const fb::TokenizerT& t) {
  PackedTokenizer packed(t);
  auto tok = Tokenizer::FromFlatbuffer(packed.table());
  REQUIRE_MESSAGE(tok.ok(), tok.status().ToString());
  return std::move(tok).value();
}

std::string NeoxDir() {
  const std::string shared = testing::SharedDir();
  return shared.empty() ? "" : shared + "/tokenizers/gpt-neox-20b";
}

// The GPT-NeoX-20B tokenizer, imported once; null when the shared folder is absent.
const Tokenizer* Neox() {
  static const std::unique_ptr<Tokenizer> tokenizer = []() -> std::unique_ptr<Tokenizer> {
    if (NeoxDir().empty()) return nullptr;
    auto imported = ImportTokenizerJson(NeoxDir() + "/tokenizer.json");
    REQUIRE_MESSAGE(imported.ok(), imported.status().ToString());
    return Load(imported.value());
  }();
  return tokenizer.get();
}

std::vector<int32_t> Encode(const Tokenizer& t, std::string_view text) {
  std::vector<int32_t> ids;
  const Status s = t.Encode(text, &ids);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return ids;
}

std::vector<std::string> Pieces(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view p : PreTokenizeGpt2(text)) out.emplace_back(p);
  return out;
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("tokenizer: GPT-NeoX-20B matches llama.cpp's test vectors") {
  if (Neox() == nullptr) {
    MESSAGE("skipped: the shared folder (tokenizers/gpt-neox-20b) is absent");
    return;
  }
  const Tokenizer& tok = *Neox();
  CHECK(tok.vocab_size() == 50277);
  CHECK(tok.bos_id() == 0);
  CHECK(tok.eos_id() == 0);
  CHECK(tok.pad_id() == 1);
  CHECK(tok.IsSpecial(0));
  CHECK_FALSE(tok.IsSpecial(50254));

  const std::string inp = ReadFile(NeoxDir() + "/ggml-vocab-mpt.gguf.inp");
  const std::string out = ReadFile(NeoxDir() + "/ggml-vocab-mpt.gguf.out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(separator, pos);
    REQUIRE(next != std::string::npos);
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + separator.size();
  }
  std::vector<std::vector<int32_t>> expected;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::vector<int32_t> ids;
    std::istringstream numbers(line);
    for (int32_t id; numbers >> id;) ids.push_back(id);
    expected.push_back(ids);
  }
  REQUIRE(texts.size() == 46);
  REQUIRE(expected.size() == 46);

  int passed = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(i);
    CAPTURE(texts[i]);
    const std::vector<int32_t> ids = Encode(tok, texts[i]);
    CHECK(ids == expected[i]);
    CHECK(tok.Decode(ids) == NormalizeNfc(texts[i]));
    if (ids == expected[i]) ++passed;
  }
  MESSAGE(passed << "/" << texts.size() << " GPT-NeoX-20B test vectors encode exactly");
}

TEST_CASE("tokenizer: GPT-NeoX-20B added tokens, specials and NFC") {
  if (Neox() == nullptr) {
    MESSAGE("skipped: the shared folder (tokenizers/gpt-neox-20b) is absent");
    return;
  }
  const Tokenizer& tok = *Neox();
  // The README's examples: four spaces are one added token, one space joins the word.
  CHECK(Encode(tok, "    Hello") == std::vector<int32_t>{50274, 12092});
  CHECK(Encode(tok, " Hello") == std::vector<int32_t>{24387});
  // Special tokens are cut out of the raw text, so they never merge with their neighbours.
  const std::vector<int32_t> with_eos = Encode(tok, "Hello<|endoftext|> world");
  REQUIRE(with_eos.size() == 3);
  CHECK(with_eos[1] == 0);
  CHECK(tok.Decode(with_eos) == "Hello<|endoftext|> world");
  // Decomposed input is composed before BPE: "e" + U+0301 encodes as the precomposed "é".
  CHECK(Encode(tok, "caf\x65\xcc\x81") == Encode(tok, "caf\xc3\xa9"));
  // Long words (here 300 CJK bytes in one \p{L}+ run, and a long punctuation run) take the heap
  // path of BPE; both must round trip.
  std::string cjk;
  for (int i = 0; i < 100; ++i) cjk += i % 2 ? "\xe8\xaa\x9e" : "\xe6\x97\xa5";
  CHECK(tok.Decode(Encode(tok, cjk)) == cjk);
  const std::string dashes(500, '-');
  const std::vector<int32_t> dash_ids = Encode(tok, dashes);
  CHECK(tok.Decode(dash_ids) == dashes);
  CHECK(dash_ids.size() < 40);
  // Invalid UTF-8 is refused, naming where.
  std::vector<int32_t> ids;
  const Status bad = tok.Encode("ok\xff", &ids);
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK(bad.message().find("byte 2") != std::string::npos);
  CHECK(tok.TokenId("\xc4\xa0Hello") == 24387);  // "ĠHello".
  CHECK(tok.TokenString(24387) == "\xc4\xa0Hello");
  CHECK(tok.TokenBytes(24387) == " Hello");
  CHECK(tok.TokenBytes(-1).empty());
  CHECK(tok.TokenBytes(1 << 30).empty());
}

TEST_CASE("tokenizer: encode speed on ~1 MB of mixed text") {
  if (Neox() == nullptr) {
    MESSAGE("skipped: the shared folder (tokenizers/gpt-neox-20b) is absent");
    return;
  }
  const Tokenizer& tok = *Neox();
  // The test texts cover English, code-like punctuation, digits, Cyrillic, CJK and emoji.
  const std::string sample = ReadFile(NeoxDir() + "/ggml-vocab-mpt.gguf.inp");
  REQUIRE(!sample.empty());
  std::string text;
  while (text.size() < (1 << 20)) text += sample;
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  double best_s = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    ids.clear();
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(tok.Encode(text, &ids).ok());
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    best_s = std::min(best_s, took.count());
  }
  CHECK(tok.Decode(ids) == NormalizeNfc(text));
  char line[160];
  std::snprintf(line, sizeof(line),
                "encode: %.2f MB in %.1f ms = %.1f MB/s, %zu tokens (best of 3)", text.size() / 1e6,
                best_s * 1e3, text.size() / 1e6 / best_s, ids.size());
  MESSAGE(std::string(line));
}

TEST_CASE("tokenizer: NFC") {
  CHECK(NormalizeNfc("e\xcc\x81") == "\xc3\xa9");  // e + U+0301 -> é.
  CHECK(NormalizeNfc("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8") == "\xea\xb0\x81");  // L V T -> 각.
  CHECK(NormalizeNfc("\xea\xb0\x80\xe1\x86\xa8") == "\xea\xb0\x81");              // LV + T -> 각.
  // Canonical ordering without composition: q + U+0307 + U+0323 -> q + U+0323 + U+0307.
  CHECK(NormalizeNfc("q\xcc\x87\xcc\xa3") == "q\xcc\xa3\xcc\x87");
  // Reordering lets the dot below compose first: U+1E0B U+0323 -> U+1E0D U+0307.
  CHECK(NormalizeNfc("\xe1\xb8\x8b\xcc\xa3") == "\xe1\xb8\x8d\xcc\x87");
  CHECK(NormalizeNfc("\xe2\x84\xab") == "\xc3\x85");      // Angstrom sign -> Å (singleton).
  CHECK(NormalizeNfc("\xcd\x84") == "\xcc\x88\xcc\x81");  // U+0344 -> U+0308 U+0301.
  CHECK(NormalizeNfc("\xe0\xa5\x98") == "\xe0\xa4\x95\xe0\xa4\xbc");  // U+0958: an exclusion.
  CHECK(NormalizeNfc("a\xcc\x81\xcc\x81") == "\xc3\xa1\xcc\x81");     // The second is blocked.
  CHECK(NormalizeNfc("A\xcc\x8a\xcc\x81") == "\xc7\xba");             // Two steps: Ǻ.
  CHECK(NormalizeNfc("\xe0\xad\x87\xe0\xac\xbe") == "\xe0\xad\x8b");  // Starter + starter.
  // U+0FB2 U+0F80 U+0F71 reorders to U+0FB2 U+0F71 U+0F80 (classes 0, 129, 130).
  CHECK(NormalizeNfc("\xe0\xbe\xb2\xe0\xbe\x80\xe0\xbd\xb1") ==
        "\xe0\xbe\xb2\xe0\xbd\xb1\xe0\xbe\x80");
  CHECK(NormalizeNfc("plain ASCII and caf\xc3\xa9") == "plain ASCII and caf\xc3\xa9");
  CHECK(tokenizer_internal::IsNfcQuick("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"));
  CHECK_FALSE(tokenizer_internal::IsNfcQuick("cafe\xcc\x81"));
  CHECK(NormalizeNfc("").empty());
  CHECK(tokenizer_internal::UnicodeVersion() == "14.0.0");
}

TEST_CASE("tokenizer: GPT-2 pre-tokenizer splits") {
  using V = std::vector<std::string>;
  CHECK(Pieces("Hello world") == V{"Hello", " world"});
  CHECK(Pieces("I'm here, they'll've 's") ==
        V{"I", "'m", " here", ",", " they", "'ll", "'ve", " '", "s"});
  CHECK(Pieces("  a") == V{" ", " a"});
  CHECK(Pieces("a\n\nb") == V{"a", "\n", "\n", "b"});
  CHECK(Pieces("x  \n  y  ") == V{"x", "  \n ", " y", "  "});
  CHECK(Pieces("\t\tx") == V{"\t", "\t", "x"});
  CHECK(Pieces("3.14159 apples!!") == V{"3", ".", "14159", " apples", "!!"});
  CHECK(Pieces("don't 'S") == V{"don", "'t", " '", "S"});
  CHECK(Pieces("''s") == V{"''", "s"});
  // CJK is \p{L}; the ideographic full stop is not.
  CHECK(Pieces("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x80\x82") ==
        V{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe3\x80\x82"});
  // No-break space is white space but not the optional leading space.
  CHECK(Pieces("a \u00a0b") == V{"a", " ", "\u00a0", "b"});
  // A combining mark (\p{M}) is in none of the classes: it stands alone.
  CHECK(Pieces("e\xcc\x81t\xc3\xa9") == V{"e", "\xcc\x81", "t\xc3\xa9"});
  CHECK(Pieces("  ") == V{"  "});
  CHECK(Pieces("").empty());
}

TEST_CASE("tokenizer: byte tokenizer") {
  fb::TokenizerT t;
  t.kind = fb::TokenizerKind::Bytes;
  const auto tok = Load(t);
  CHECK(tok->vocab_size() == 256);
  CHECK(tok->bos_id() == -1);
  const std::string text("in\xff\x00\xc3\xa9", 6);  // Any bytes, invalid UTF-8 included.
  const std::vector<int32_t> ids = Encode(*tok, text);
  CHECK(ids == std::vector<int32_t>{'i', 'n', 0xff, 0, 0xc3, 0xa9});
  CHECK(tok->Decode(ids) == text);
  CHECK(tok->TokenBytes(0xff) == "\xff");
  CHECK(tok->TokenBytes(256).empty());
  CHECK(tok->TokenId("A") == 'A');
}

TEST_CASE("tokenizer: streaming decode holds back incomplete characters") {
  fb::TokenizerT t;
  t.kind = fb::TokenizerKind::Bytes;
  const auto tok = Load(t);
  TokenStreamDecoder stream(*tok);
  CHECK(stream.Next('a') == "a");
  CHECK(stream.Next(0xe2).empty());  // "€" is E2 82 AC.
  CHECK(stream.Next(0x82).empty());
  CHECK(stream.Next(0xac) == "\xe2\x82\xac");
  CHECK(stream.Next(0xff) == "\xef\xbf\xbd");  // Never valid: U+FFFD at once.
  CHECK(stream.Next(0xe2).empty());
  // The cut-off sequence becomes U+FFFD.
  CHECK(stream.Next('b') == std::string("\xef\xbf\xbd") + "b");
  CHECK(stream.Next(0xf0).empty());
  CHECK(stream.Flush() == "\xef\xbf\xbd");
  CHECK(stream.Flush().empty());

  if (Neox() == nullptr) {
    MESSAGE("skipped the BPE part: the shared folder (tokenizers/gpt-neox-20b) is absent");
    return;
  }
  // An emoji that byte-level BPE splits across tokens comes out whole, once.
  const std::string text = "ok \xf0\x9f\xa6\x99\xf0\x9f\x90\xa2 done";  // 🦙🐢
  const std::vector<int32_t> ids = Encode(*Neox(), text);
  TokenStreamDecoder neox_stream(*Neox());
  std::string printed;
  int held_back = 0;
  for (int32_t id : ids) {
    const std::string piece = neox_stream.Next(id);
    if (piece.size() < Neox()->TokenBytes(id).size()) ++held_back;
    printed += piece;
  }
  printed += neox_stream.Flush();
  CHECK(printed == text);
  CHECK(held_back > 0);
}

TEST_CASE("tokenizer: small tokenizer.json with array merges") {
  testing::TempDir dir;
  // "Ġ" is U+0120 (the stand-in for ' '); merges in the [a, b] form of tokenizers >= 0.20.
  const std::string json = R"({
    "version": "1.0",
    "added_tokens": [{"id": 7, "content": "<eos>", "special": true, "normalized": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "dropout": null, "unk_token": null,
              "vocab": {"a": 0, "b": 1, "\u0120": 2, "ab": 3, "\u0120ab": 4, "abab": 5, "c": 6},
              "merges": [["a", "b"], ["\u0120", "ab"], ["ab", "ab"]]}
  })";
  WriteFile(dir.File("tokenizer.json"), json);
  WriteFile(dir.File("tokenizer_config.json"), R"({"eos_token": {"content": "<eos>"}})");
  auto imported = ImportTokenizerJson(dir.File("tokenizer.json"));
  REQUIRE_MESSAGE(imported.ok(), imported.status().ToString());
  CHECK(imported->merges == std::vector<std::string>{"a b", "\xc4\xa0 ab", "ab ab"});
  CHECK(imported->eos_id == 7);
  CHECK(imported->normalizer.empty());
  const auto tok = Load(imported.value());
  CHECK(tok->vocab_size() == 8);
  // "abab ab" -> "abab", " ab"; bytes without a token (x) are dropped, as Hugging Face does.
  CHECK(Encode(*tok, "abab ab") == std::vector<int32_t>{5, 4});
  CHECK(Encode(*tok, "ab<eos>cx") == std::vector<int32_t>{3, 7, 6});
  CHECK(tok->Decode(std::vector<int32_t>{5, 4, 7}) == "abab ab<eos>");
  CHECK(tok->IsSpecial(7));
}

TEST_CASE("tokenizer: importer refuses what it cannot represent") {
  testing::TempDir dir;
  auto import = [&](const std::string& json) {
    WriteFile(dir.File("tokenizer.json"), json);
    return ImportTokenizerJson(dir.File("tokenizer.json"));
  };
  const std::string model =
      R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  const std::string byte_level = R"("pre_tokenizer": {"type": "ByteLevel"})";

  auto expect = [&](const Result<fb::TokenizerT>& r, StatusCode code, const std::string& field) {
    REQUIRE_FALSE(r.ok());
    CAPTURE(r.status().ToString());
    CHECK(r.status().code() == code);
    CHECK(r.status().message().find(field) != std::string::npos);
    CHECK(r.status().message().find("tokenizer.json") != std::string::npos);
  };
  expect(import("{\"model\": "), StatusCode::kCorrupt, "not valid JSON");
  expect(import("[1, 2]"), StatusCode::kCorrupt, "top level");
  expect(import(R"({"model": {"type": "WordPiece", "vocab": {}}, )" + byte_level + "}"),
         StatusCode::kUnsupported, "\"model.type\"");
  expect(import(R"({"model": {"type": "Unigram", "vocab": []}, )" + byte_level + "}"),
         StatusCode::kUnsupported, "\"model.type\"");
  expect(import("{" + model + R"(, "pre_tokenizer": {"type": "Whitespace"}})"),
         StatusCode::kUnsupported, "\"pre_tokenizer\"");
  expect(import("{" + model +
                R"(, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true}})"),
         StatusCode::kUnsupported, "\"pre_tokenizer.add_prefix_space\"");
  expect(import("{" + model + ", " + byte_level + R"(, "normalizer": {"type": "NFKC"}})"),
         StatusCode::kUnsupported, "\"normalizer\"");
  expect(import("{" + model + ", " + byte_level +
                R"(, "added_tokens": [{"id": 3, "content": "<m>", "lstrip": true}]})"),
         StatusCode::kUnsupported, "\"added_tokens[0].lstrip\"");
  expect(
      import(R"({"model": {"type": "BPE", "vocab": {"a": -4}, "merges": []}, )" + byte_level + "}"),
      StatusCode::kCorrupt, "\"model.vocab[\"a\"]\"");
  expect(
      import(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]}, )" + byte_level + "}"),
      StatusCode::kCorrupt, "\"model.merges[0]\"");
  expect(import(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}, )" +
                byte_level + "}"),
         StatusCode::kUnsupported, "\"model.dropout\"");
  expect(ImportTokenizerJson(dir.File("missing/tokenizer.json")), StatusCode::kNotFound,
         "no such file");

  // A minimal valid file imports.
  auto ok = import("{" + model + ", " + byte_level + R"(, "normalizer": {"type": "NFC"}})");
  REQUIRE_MESSAGE(ok.ok(), ok.status().ToString());
  CHECK(ok->normalizer == "nfc");
  CHECK(ok->pre_tokenizer == "gpt2");
}

TEST_CASE("tokenizer: FromFlatbuffer refuses inconsistent tables") {
  fb::TokenizerT t;
  t.kind = fb::TokenizerKind::BPE;
  t.pre_tokenizer = "gpt2";
  t.tokens = {"a", "b", "ab"};
  t.merges = {"a b"};
  auto load = [](const fb::TokenizerT& table) {
    PackedTokenizer packed(table);
    return Tokenizer::FromFlatbuffer(packed.table());
  };
  REQUIRE(load(t).ok());

  fb::TokenizerT bad_merge = t;
  bad_merge.merges = {"a c"};
  CHECK(load(bad_merge).status().code() == StatusCode::kCorrupt);
  CHECK(load(bad_merge).status().message().find("merge 0") != std::string::npos);

  fb::TokenizerT bad_eos = t;
  bad_eos.eos_id = 3;
  CHECK(load(bad_eos).status().message().find("eos_id") != std::string::npos);

  fb::TokenizerT bad_pre = t;
  bad_pre.pre_tokenizer = "llama3";
  CHECK(load(bad_pre).status().code() == StatusCode::kUnsupported);

  fb::TokenizerT none;
  CHECK(load(none).status().code() == StatusCode::kUnsupported);

  fb::TokenizerT bad_special = t;
  bad_special.special = {-1};
  CHECK(load(bad_special).status().code() == StatusCode::kCorrupt);
}

}  // namespace
}  // namespace recur
