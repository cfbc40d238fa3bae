// Tokenizers: text <-> token ids, built from the Tokenizer table of a `.recur` file.
//
// Two kinds:
//  - Bytes: token id = byte value (0..255), as the tiny RWKV models use; no normalisation.
//  - BPE: byte-level BPE as in GPT-2 and GPT-NeoX-20B (the Mamba and RWKV-4 "Pile" tokenizer),
//    exact against Hugging Face `tokenizers`: added tokens are cut out first (leftmost-longest;
//    non-normalized ones on the raw text, normalized ones on the NFC text), the rest is split by
//    the GPT-2 regex, each piece's UTF-8 bytes are mapped to the byte-to-unicode alphabet, and
//    BPE merges the adjacent pair of lowest merge rank until none is left.
//
// A Tokenizer is immutable after FromFlatbuffer and safe to use from many threads at once. It
// copies what it needs, so the flatbuffer may go away after loading.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/recur_generated.h"
#include "formats/status.h"

namespace recur {

class Tokenizer {
 public:
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Builds the lookup structures (token hash map, merge-rank map, added-token tries). A table
  // that contradicts itself (a merge naming a token not in the vocabulary, an id out of range,
  // an unknown pre-tokenizer or normalizer) gives a Status saying which entry is wrong.
  static Result<std::unique_ptr<Tokenizer>> FromFlatbuffer(const fb::Tokenizer& table);

  // Appends the ids of `utf8` to `ids` (which is not cleared). Adds no BOS or EOS. Special
  // tokens written in the text (e.g. "<|endoftext|>") are recognised, as Hugging Face does by
  // default. BPE input must be valid UTF-8 (else InvalidArgument naming the byte offset);
  // Bytes input may be any bytes.
  Status Encode(std::string_view utf8, std::vector<int32_t>* ids) const;

  // The bytes of `ids` concatenated, special tokens included (their text, e.g. "<|endoftext|>").
  // Ids out of range contribute nothing. The result is exactly what was encoded (after NFC), but
  // an arbitrary id sequence may end in or contain incomplete UTF-8: see TokenStreamDecoder for
  // text that is safe to print.
  std::string Decode(std::span<const int32_t> ids) const;

  // The raw bytes of one token ("" for an id out of range); valid until the Tokenizer is gone.
  std::string_view TokenBytes(int32_t id) const;

  // The token's string as stored (for byte-level BPE, in the byte-to-unicode alphabet, e.g.
  // "ĠHello"), or "" for an id out of range.
  std::string_view TokenString(int32_t id) const;
  // The id of a stored token string, or -1.
  int32_t TokenId(std::string_view token) const;

  fb::TokenizerKind kind() const { return kind_; }
  // Ids run from 0 to vocab_size() - 1 (some may be unused).
  int32_t vocab_size() const { return vocab_size_; }
  int32_t bos_id() const { return bos_id_; }  // -1 when the model has none.
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  // True for control tokens (the table's `special` list), which a chat loop may hide.
  bool IsSpecial(int32_t id) const;

 private:
  struct Impl;
  Tokenizer();

  fb::TokenizerKind kind_ = fb::TokenizerKind::None;
  int32_t vocab_size_ = 0;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t pad_id_ = -1;
  int32_t unk_id_ = -1;
  std::unique_ptr<Impl> impl_;
};

// Turns generated tokens into printable text one token at a time: bytes that may still be the
// start of a UTF-8 character are held back until the next token completes them, and bytes that
// can never form one are replaced by U+FFFD. The concatenation of everything Next() and Flush()
// return is the UTF-8 "lossy" form of Decode(ids), as Python's errors="replace" makes it.
class TokenStreamDecoder {
 public:
  explicit TokenStreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  // The text that is complete after token `id` (maybe "", when it ends mid-character).
  std::string Next(int32_t id);
  // What is held back (an incomplete character becomes U+FFFD); the decoder is then empty.
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

// The building blocks, exposed for tests and tools.
namespace tokenizer_internal {

// NFC (canonical decomposition, canonical ordering, canonical composition, Hangul
// algorithmically) of valid UTF-8, by the Unicode version in formats/unicode_tables.inc. Text
// that passes the quick check is returned unchanged without further work.
std::string NormalizeNfc(std::string_view utf8);
// True when NormalizeNfc(utf8) == utf8 is certain from the quick check alone.
bool IsNfcQuick(std::string_view utf8);
// The Unicode version of the tables, e.g. "14.0.0".
std::string_view UnicodeVersion();

// Splits valid UTF-8 by the GPT-2 regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// into the matched pieces, in order (they cover the input). Invalid UTF-8 comes back whole.
std::vector<std::string_view> PreTokenizeGpt2(std::string_view utf8);

// Byte-to-unicode (GPT-2): the UTF-8 of the stand-in character for each byte ("Ġ" for ' ').
std::string ByteToUnicode(uint8_t byte);

}  // namespace tokenizer_internal

}  // namespace recur
