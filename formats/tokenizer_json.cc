// tokenizer.json -> fb::TokenizerT. Every nlohmann exception is caught here: no exception leaves
// this file.
#include "formats/tokenizer_json.h"
#include "formats/json_limits.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

namespace recur {
namespace {

using Json = nlohmann::json;

// Ids above this are refused: a vocabulary of 16M tokens is far beyond any real model, and the
// limit keeps a hostile file from making the token table huge.
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// Builds errors that name the file and the field: `file: "model.type": ...`.
class Errors {
 public:
  explicit Errors(std::string name) : name_(std::move(name)) {}
  Status Unsupported(const std::string& field, const std::string& what) const {
    return recur::Unsupported(Prefix(field) + what);
  }
  Status Corrupt(const std::string& field, const std::string& what) const {
    return recur::Corrupt(Prefix(field) + what);
  }

 private:
  std::string Prefix(const std::string& field) const {
    return field.empty() ? name_ + ": " : name_ + ": \"" + field + "\": ";
  }
  std::string name_;
};

std::string Short(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

bool IsNullOrFalse(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() || (it->is_boolean() && !it->get<bool>());
}

bool IsNullOrEmpty(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty());
}

// A boolean field, `fallback` when absent or null.
Result<bool> GetBool(const Json& j, const char* key, bool fallback, const Errors& errors,
                     const std::string& field) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return errors.Corrupt(field, "expected true or false, got " + Short(*it));
  return it->get<bool>();
}

// The "type" of a normalizer/pre-tokenizer/decoder object, or "" when it has none.
std::string TypeOf(const Json& j) {
  const auto it = j.find("type");
  return (it != j.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

Status ImportNormalizer(const Json& root, const Errors& errors, fb::TokenizerT* out) {
  const auto it = root.find("normalizer");
  if (it == root.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return errors.Corrupt("normalizer", "expected an object or null");
  std::vector<std::pair<std::string, const Json*>> parts;
  if (TypeOf(*it) == "Sequence") {
    const auto list = it->find("normalizers");
    if (list == it->end() || !list->is_array()) {
      return errors.Corrupt("normalizer.normalizers", "expected an array");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      parts.emplace_back("normalizer.normalizers[" + std::to_string(i) + "]", &(*list)[i]);
    }
  } else {
    parts.emplace_back("normalizer", &*it);
  }
  for (const auto& [field, part] : parts) {
    const std::string type = part->is_object() ? TypeOf(*part) : std::string();
    if (type != "NFC") {
      return errors.Unsupported(
          field, "normalizer " + Short(*part) + " is not supported (only NFC or none)");
    }
    out->normalizer = "nfc";
  }
  return Status::Ok();
}

Status CheckByteLevel(const Json& j, const std::string& field, const Errors& errors) {
  if (!IsNullOrFalse(j, "add_prefix_space")) {
    return errors.Unsupported(field + ".add_prefix_space",
                              "true is not supported (only false, as GPT-2 and GPT-NeoX use)");
  }
  const auto regex = j.find("use_regex");
  if (regex != j.end() && !(regex->is_boolean() && regex->get<bool>())) {
    return errors.Unsupported(field + ".use_regex",
                              "only true (the GPT-2 split) is supported, got " + Short(*regex));
  }
  return Status::Ok();
}

Status ImportPreTokenizer(const Json& root, const Errors& errors, fb::TokenizerT* out) {
  const auto it = root.find("pre_tokenizer");
  if (it == root.end() || it->is_null()) {
    return errors.Unsupported("pre_tokenizer", "none is not supported (only ByteLevel)");
  }
  const Json* pre = &*it;
  std::string field = "pre_tokenizer";
  if (pre->is_object() && TypeOf(*pre) == "Sequence") {
    const auto list = pre->find("pretokenizers");
    if (list == pre->end() || !list->is_array() || list->size() != 1) {
      return errors.Unsupported("pre_tokenizer.pretokenizers",
                                "only a Sequence of one ByteLevel pre-tokenizer is supported");
    }
    pre = &(*list)[0];
    field = "pre_tokenizer.pretokenizers[0]";
  }
  if (!pre->is_object() || TypeOf(*pre) != "ByteLevel") {
    return errors.Unsupported(
        field, "pre-tokenizer " + Short(*pre) + " is not supported (only ByteLevel)");
  }
  RECUR_RETURN_IF_ERROR(CheckByteLevel(*pre, field, errors));
  out->pre_tokenizer = "gpt2";
  return Status::Ok();
}

Status CheckDecoder(const Json& root, const Errors& errors) {
  const auto it = root.find("decoder");
  if (it == root.end() || it->is_null()) return Status::Ok();
  if (!it->is_object() || TypeOf(*it) != "ByteLevel") {
    return errors.Unsupported("decoder",
                              "decoder " + Short(*it) + " is not supported (only ByteLevel)");
  }
  return Status::Ok();
}

Result<int32_t> GetId(const Json& j, const Errors& errors, const std::string& field) {
  if (!j.is_number_integer()) {
    return errors.Corrupt(field, "expected an integer id, got " + Short(j));
  }
  const int64_t id = j.get<int64_t>();
  if (id < 0 || id > kMaxTokenId) {
    return errors.Corrupt(field, "id " + std::to_string(id) + " is out of range (0.." +
                                     std::to_string(kMaxTokenId) + ")");
  }
  return static_cast<int32_t>(id);
}

// The content of a tokenizer_config.json entry: "text" or {"content": "text", ...}.
std::string ConfigTokenContent(const Json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return {};
}

Result<fb::TokenizerT> Import(std::string_view text, const std::string& name,
                              std::string_view config_text) {
  const Errors errors(name);
  Json root;
  try {
    root = ParseJsonBounded(text.begin(), text.end());
  } catch (const std::exception& e) {
    return recur::Corrupt(name + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) return errors.Corrupt("", "expected a JSON object at the top level");

  fb::TokenizerT out;
  out.kind = fb::TokenizerKind::BPE;

  // The model.
  const auto model_it = root.find("model");
  if (model_it == root.end() || !model_it->is_object()) {
    return errors.Corrupt("model", "missing, or not an object");
  }
  const Json& model = *model_it;
  const auto type_it = model.find("type");
  if (type_it != model.end()) {
    if (!type_it->is_string() || type_it->get<std::string>() != "BPE") {
      return errors.Unsupported("model.type", Short(*type_it) + " is not supported (only \"BPE\")");
    }
  } else if (!model.contains("merges")) {
    // Files without "type" name their model by its fields; only BPE has merges.
    return errors.Unsupported("model.type", "missing, and the model has no merges (only BPE)");
  }
  const auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    return errors.Unsupported("model.dropout", Short(*dropout) +
                                                   " is not supported (BPE dropout is for "
                                                   "training; only null)");
  }
  if (!IsNullOrFalse(model, "byte_fallback")) {
    return errors.Unsupported("model.byte_fallback", "true is not supported");
  }
  if (!IsNullOrFalse(model, "ignore_merges")) {
    return errors.Unsupported("model.ignore_merges", "true is not supported");
  }
  if (!IsNullOrEmpty(model, "continuing_subword_prefix")) {
    return errors.Unsupported("model.continuing_subword_prefix", "is not supported");
  }
  if (!IsNullOrEmpty(model, "end_of_word_suffix")) {
    return errors.Unsupported("model.end_of_word_suffix", "is not supported");
  }

  const auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) {
    return errors.Corrupt("model.vocab", "missing, or not an object of token -> id");
  }
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(vocab_it->size());
  int32_t max_id = -1;
  for (const auto& [token, id_json] : vocab_it->items()) {
    RECUR_ASSIGN_OR_RETURN(const int32_t id,
                           GetId(id_json, errors, "model.vocab[" + Short(Json(token)) + "]"));
    vocab.emplace_back(token, id);
    max_id = std::max(max_id, id);
  }

  // Added tokens.
  struct Added {
    std::string content;
    int32_t id;
    bool special;
    bool normalized;
  };
  std::vector<Added> added;
  const auto added_it = root.find("added_tokens");
  if (added_it != root.end() && !added_it->is_null()) {
    if (!added_it->is_array()) return errors.Corrupt("added_tokens", "expected an array");
    for (size_t i = 0; i < added_it->size(); ++i) {
      const Json& a = (*added_it)[i];
      const std::string field = "added_tokens[" + std::to_string(i) + "]";
      if (!a.is_object()) return errors.Corrupt(field, "expected an object");
      const auto content = a.find("content");
      if (content == a.end() || !content->is_string() || content->get<std::string>().empty()) {
        return errors.Corrupt(field + ".content", "expected a non-empty string");
      }
      const auto id_json = a.find("id");
      if (id_json == a.end()) return errors.Corrupt(field + ".id", "missing");
      RECUR_ASSIGN_OR_RETURN(const int32_t id, GetId(*id_json, errors, field + ".id"));
      RECUR_ASSIGN_OR_RETURN(const bool special,
                             GetBool(a, "special", false, errors, field + ".special"));
      // Hugging Face's default: special tokens are matched on the raw text.
      RECUR_ASSIGN_OR_RETURN(const bool normalized,
                             GetBool(a, "normalized", !special, errors, field + ".normalized"));
      for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
        RECUR_ASSIGN_OR_RETURN(const bool on, GetBool(a, flag, false, errors, field + "." + flag));
        if (on) return errors.Unsupported(field + "." + flag, "true is not supported");
      }
      added.push_back({content->get<std::string>(), id, special, normalized});
      max_id = std::max(max_id, id);
    }
  }
  if (max_id < 0) return errors.Corrupt("model.vocab", "is empty");

  out.tokens.assign(static_cast<size_t>(max_id) + 1, std::string());
  std::vector<bool> used(out.tokens.size(), false);
  for (auto& [token, id] : vocab) {
    if (used[id]) {
      return errors.Corrupt("model.vocab", "id " + std::to_string(id) + " is given to both " +
                                               Short(Json(out.tokens[id])) + " and " +
                                               Short(Json(token)));
    }
    used[id] = true;
    out.tokens[id] = std::move(token);
  }
  // The token table holds an added token's content, which is what decoding prints.
  std::unordered_map<std::string, int32_t> added_ids;
  for (const Added& a : added) {
    out.tokens[a.id] = a.content;
    auto t = std::make_unique<fb::AddedTokenT>();
    t->content = a.content;
    t->id = a.id;
    t->special = a.special;
    t->normalized = a.normalized;
    out.added.push_back(std::move(t));
    if (a.special) out.special.push_back(a.id);
    added_ids.emplace(a.content, a.id);
  }

  // Merges: "a b" strings, or ["a", "b"] pairs (tokenizers >= 0.20). Stored as "a b", so a
  // token containing a space cannot be stored; byte-level tokens never contain one.
  const auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) {
    return errors.Corrupt("model.merges", "missing, or not an array");
  }
  out.merges.reserve(merges_it->size());
  for (size_t i = 0; i < merges_it->size(); ++i) {
    const Json& m = (*merges_it)[i];
    const std::string field = "model.merges[" + std::to_string(i) + "]";
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == s.size() ||
          s.find(' ', space + 1) != std::string::npos) {
        return errors.Corrupt(field, Short(m) + " is not two tokens separated by one space");
      }
      out.merges.push_back(s);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      const std::string a = m[0].get<std::string>();
      const std::string b = m[1].get<std::string>();
      if (a.empty() || b.empty()) return errors.Corrupt(field, "a token is empty");
      if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos) {
        return errors.Unsupported(field, Short(m) + ": tokens with a space are not supported");
      }
      out.merges.push_back(a + " " + b);
    } else {
      return errors.Corrupt(field, "expected \"a b\" or [\"a\", \"b\"], got " + Short(m));
    }
  }

  // The unknown token.
  const auto unk = model.find("unk_token");
  if (unk != model.end() && !unk->is_null()) {
    if (!unk->is_string()) return errors.Corrupt("model.unk_token", "expected a string or null");
    const std::string u = unk->get<std::string>();
    int32_t unk_id = -1;
    for (const auto& [token, id] : vocab) {
      (void)token;
      if (out.tokens[id] == u) unk_id = id;
    }
    if (const auto a = added_ids.find(u); a != added_ids.end()) unk_id = a->second;
    if (unk_id < 0) return errors.Corrupt("model.unk_token", Short(*unk) + " is not a token");
    out.unk_id = unk_id;
  }

  RECUR_RETURN_IF_ERROR(ImportNormalizer(root, errors, &out));
  RECUR_RETURN_IF_ERROR(ImportPreTokenizer(root, errors, &out));
  RECUR_RETURN_IF_ERROR(CheckDecoder(root, errors));

  // BOS/EOS/PAD: tokenizer_config.json when it names them, else well-known special tokens.
  auto find_token = [&](const std::string& content) -> int32_t {
    if (content.empty()) return -1;
    if (const auto a = added_ids.find(content); a != added_ids.end()) return a->second;
    return -1;
  };
  if (!config_text.empty()) {
    Json config;
    try {
      config = ParseJsonBounded(config_text.begin(), config_text.end());
    } catch (const std::exception& e) {
      return recur::Corrupt(name +
                            ": tokenizer_config.json beside it is not valid JSON: " + e.what());
    }
    if (config.is_object()) {
      out.bos_id = find_token(ConfigTokenContent(config, "bos_token"));
      out.eos_id = find_token(ConfigTokenContent(config, "eos_token"));
      out.pad_id = find_token(ConfigTokenContent(config, "pad_token"));
    }
  }
  auto first_of = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      const int32_t id = find_token(n);
      if (id >= 0) return id;
    }
    return -1;
  };
  if (out.bos_id < 0) out.bos_id = first_of({"<s>", "<|endoftext|>"});
  if (out.eos_id < 0) out.eos_id = first_of({"</s>", "<|endoftext|>"});
  if (out.pad_id < 0) out.pad_id = first_of({"<|padding|>", "<pad>"});
  return out;
}

}  // namespace

Result<fb::TokenizerT> ImportTokenizerJsonText(std::string_view text, const std::string& name,
                                               std::string_view config_text) {
  try {
    return Import(text, name, config_text);
  } catch (const std::exception& e) {
    // A type error that slipped past the checks above, or running out of memory.
    return Internal(name + ": while importing the tokenizer: " + e.what());
  } catch (...) {
    return Internal(name + ": while importing the tokenizer: unknown exception");
  }
}

Result<fb::TokenizerT> ImportTokenizerJson(const std::string& path) {
  auto read = [](const std::string& p, std::string* text) -> Status {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      std::error_code ec;
      if (!std::filesystem::exists(p, ec)) return NotFound(p + ": no such file");
      return IoError(p + ": cannot open for reading");
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) return IoError(p + ": read failed");
    *text = std::move(buffer).str();
    return Status::Ok();
  };
  try {
    std::string text;
    RECUR_RETURN_IF_ERROR(read(path, &text));
    std::string config;
    const std::filesystem::path config_path =
        std::filesystem::path(path).parent_path() / "tokenizer_config.json";
    std::error_code ec;
    if (std::filesystem::is_regular_file(config_path, ec)) {
      RECUR_RETURN_IF_ERROR(read(config_path.string(), &config));
    }
    return ImportTokenizerJsonText(text, path, config);
  } catch (const std::exception& e) {
    return IoError(path + ": " + e.what());
  }
}

}  // namespace recur
