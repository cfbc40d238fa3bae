// Importing a Hugging Face tokenizer.json into the Tokenizer table of a `.recur` file.
//
// Supported: a byte-level BPE model (GPT-2, GPT-NeoX-20B and the tokenizers derived from them):
//  - model: type "BPE", vocab, merges in either form ("a b" strings or ["a", "b"] pairs), an
//    optional unk_token; no dropout, byte_fallback, ignore_merges, continuing_subword_prefix or
//    end_of_word_suffix;
//  - added_tokens: without lstrip, rstrip or single_word;
//  - normalizer: none or NFC (alone or in a Sequence);
//  - pre_tokenizer: ByteLevel (alone or in a Sequence) with add_prefix_space false and the GPT-2
//    regex on;
//  - decoder: none or ByteLevel. The post_processor is not imported: whether to add BOS is the
//    model's business, not the tokenizer's.
// Anything else is refused with a Status naming the file and the field.
//
// bos/eos/pad ids come from tokenizer_config.json beside the file when it names them, else from
// well-known special tokens ("<|endoftext|>" is both BOS and EOS, "<s>"/"</s>", "<|padding|>",
// "<pad>"); a model importer may overwrite them from config.json.
#pragma once

#include <string>
#include <string_view>

#include "formats/recur_generated.h"
#include "formats/status.h"

namespace recur {

// Reads and converts the tokenizer.json at `path`.
Result<fb::TokenizerT> ImportTokenizerJson(const std::string& path);

// The same, from text already in memory; `name` is used in error messages, and
// `config_text` is the content of tokenizer_config.json ("" when there is none).
Result<fb::TokenizerT> ImportTokenizerJsonText(std::string_view text, const std::string& name,
                                               std::string_view config_text = {});

}  // namespace recur
