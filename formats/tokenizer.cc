// Byte and byte-level BPE tokenizers: NFC, the GPT-2 pre-tokenizer and BPE written out by hand,
// so that the core library needs no regex or Unicode library (formats/unicode_tables.inc holds
// the few Unicode properties that are needed, as sorted ranges).
#include "formats/tokenizer.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>

namespace recur {
namespace {

// ------------------------------------------------------------------------------------------------
// Unicode data.

struct ClassRange {
  uint32_t lo;
  uint32_t hi;
  uint8_t value;
};

struct Triple {
  uint32_t a;
  uint32_t b;
  uint32_t c;
};

#include "formats/unicode_tables.inc"

// The value of the range holding `cp`, or 0 when none does.
template <size_t N>
uint8_t RangeValue(const ClassRange (&table)[N], uint32_t cp) {
  // The first range that ends at or after cp; it holds cp when it also starts at or before it.
  const ClassRange* it = std::lower_bound(table, table + N, cp,
                                          [](const ClassRange& r, uint32_t v) { return r.hi < v; });
  return (it != table + N && it->lo <= cp) ? it->value : 0;
}

enum CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

// Classes of ASCII, looked up directly because most text is mostly ASCII.
constexpr std::array<uint8_t, 128> MakeAsciiClasses() {
  std::array<uint8_t, 128> classes{};
  for (uint32_t c = 0; c < 128; ++c) {
    for (const ClassRange& r : kCharClassRanges) {
      if (r.lo <= c && c <= r.hi) classes[c] = r.value;
    }
  }
  return classes;
}
constexpr std::array<uint8_t, 128> kAsciiClasses = MakeAsciiClasses();

inline CharClass ClassOf(uint32_t cp) {
  if (cp < 128) return static_cast<CharClass>(kAsciiClasses[cp]);
  return static_cast<CharClass>(RangeValue(kCharClassRanges, cp));
}

inline uint8_t CombiningClass(uint32_t cp) {
  if (cp < kCccRanges[0].lo) return 0;
  return RangeValue(kCccRanges, cp);
}

// True unless the NFC quick check says "Yes" and the class is 0 (see gen_unicode_tables.py).
inline bool NeedsNfcCare(uint32_t cp) {
  if (cp < kNfcCareRanges[0].lo) return false;
  return RangeValue(kNfcCareRanges, cp) != 0;
}

// Hangul syllables decompose and compose by arithmetic (Unicode 3.12).
constexpr uint32_t kHangulSBase = 0xAC00;
constexpr uint32_t kHangulLBase = 0x1100;
constexpr uint32_t kHangulVBase = 0x1161;
constexpr uint32_t kHangulTBase = 0x11A7;
constexpr uint32_t kHangulLCount = 19;
constexpr uint32_t kHangulVCount = 21;
constexpr uint32_t kHangulTCount = 28;
constexpr uint32_t kHangulNCount = kHangulVCount * kHangulTCount;
constexpr uint32_t kHangulSCount = kHangulLCount * kHangulNCount;

void DecomposeInto(uint32_t cp, std::u32string* out) {
  if (cp - kHangulSBase < kHangulSCount) {
    const uint32_t s = cp - kHangulSBase;
    out->push_back(kHangulLBase + s / kHangulNCount);
    out->push_back(kHangulVBase + (s % kHangulNCount) / kHangulTCount);
    if (s % kHangulTCount != 0) out->push_back(kHangulTBase + s % kHangulTCount);
    return;
  }
  const Triple* end = std::end(kDecompositions);
  const Triple* it = std::lower_bound(std::begin(kDecompositions), end, cp,
                                      [](const Triple& t, uint32_t v) { return t.a < v; });
  if (it == end || it->a != cp) {
    out->push_back(cp);
    return;
  }
  // Canonical decompositions nest only a few levels deep, so recursion is bounded.
  DecomposeInto(it->b, out);
  if (it->c != 0) DecomposeInto(it->c, out);
}

// The primary composite of (a, b), or 0.
uint32_t Compose(uint32_t a, uint32_t b) {
  if (a - kHangulLBase < kHangulLCount && b - kHangulVBase < kHangulVCount) {
    return kHangulSBase + ((a - kHangulLBase) * kHangulVCount + (b - kHangulVBase)) * kHangulTCount;
  }
  if (a - kHangulSBase < kHangulSCount && (a - kHangulSBase) % kHangulTCount == 0 &&
      b - kHangulTBase - 1 < kHangulTCount - 1) {
    return a + (b - kHangulTBase);
  }
  const Triple* end = std::end(kCompositions);
  const Triple* it =
      std::lower_bound(std::begin(kCompositions), end, std::pair<uint32_t, uint32_t>(a, b),
                       [](const Triple& t, const std::pair<uint32_t, uint32_t>& v) {
                         return t.a < v.first || (t.a == v.first && t.b < v.second);
                       });
  return (it != end && it->a == a && it->b == b) ? it->c : 0;
}

// ------------------------------------------------------------------------------------------------
// UTF-8.

enum class Utf8Kind { kValid, kIncomplete, kInvalid };

struct Utf8Step {
  Utf8Kind kind;
  uint32_t length;  // Bytes consumed: the character, or the maximal invalid subpart (>= 1).
  uint32_t cp;      // The code point when kind is kValid.
};

// Reads one character at p (p < end) by the rules of Unicode 3.9 table 3-7, so that overlong
// forms, surrogates and values above U+10FFFF are invalid. An invalid sequence reports its
// "maximal subpart" length, which is what one U+FFFD replaces in the lossy decoders of Python and
// Rust; a valid prefix cut short by `end` is kIncomplete.
inline Utf8Step ReadUtf8(const unsigned char* p, const unsigned char* end) {
  const uint32_t b0 = p[0];
  if (b0 < 0x80) return {Utf8Kind::kValid, 1, b0};
  uint32_t need;
  uint32_t cp;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {Utf8Kind::kInvalid, 1, 0};
  }
  for (uint32_t k = 1; k <= need; ++k) {
    if (p + k >= end) return {Utf8Kind::kIncomplete, k, 0};
    const unsigned char b = p[k];
    if (b < lo || b > hi) return {Utf8Kind::kInvalid, k, 0};
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Utf8Kind::kValid, need + 1, cp};
}

// Decodes a character of text already known to be valid UTF-8.
inline uint32_t DecodeValid(const unsigned char* p, uint32_t* length) {
  const uint32_t b0 = p[0];
  if (b0 < 0x80) {
    *length = 1;
    return b0;
  }
  if (b0 < 0xE0) {
    *length = 2;
    return ((b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    *length = 3;
    return ((b0 & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *length = 4;
  return ((b0 & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

constexpr char kReplacementUtf8[] = "\xEF\xBF\xBD";

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// The byte offset of the first invalid UTF-8 sequence, or npos.
size_t FindInvalidUtf8(std::string_view s) {
  const unsigned char* p = Bytes(s);
  const unsigned char* end = p + s.size();
  const unsigned char* q = p;
  while (q < end) {
    if (*q < 0x80) {
      ++q;
      continue;
    }
    const Utf8Step step = ReadUtf8(q, end);
    if (step.kind != Utf8Kind::kValid) return static_cast<size_t>(q - p);
    q += step.length;
  }
  return std::string_view::npos;
}

// ------------------------------------------------------------------------------------------------
// NFC.

bool IsNfcQuickImpl(std::string_view s) {
  const unsigned char* p = Bytes(s);
  const unsigned char* end = p + s.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const Utf8Step step = ReadUtf8(p, end);
    if (step.kind != Utf8Kind::kValid || NeedsNfcCare(step.cp)) return false;
    p += step.length;
  }
  return true;
}

// The full algorithm (UAX #15): decompose, put each run of non-starters in canonical order,
// then compose each character with the last starter when nothing between them blocks it.
// Invalid UTF-8 becomes U+FFFD.
void NfcSlow(std::string_view s, std::string* out) {
  std::u32string chars;
  chars.reserve(s.size());
  const unsigned char* p = Bytes(s);
  const unsigned char* end = p + s.size();
  while (p < end) {
    const Utf8Step step = ReadUtf8(p, end);
    DecomposeInto(step.kind == Utf8Kind::kValid ? step.cp : 0xFFFD, &chars);
    p += step.length;
  }

  std::vector<uint8_t> ccc(chars.size());
  for (size_t i = 0; i < chars.size(); ++i) ccc[i] = CombiningClass(chars[i]);
  // Canonical ordering: a stable insertion sort by class within each run of non-starters (runs
  // are short, usually one or two marks).
  for (size_t i = 1; i < chars.size(); ++i) {
    if (ccc[i] == 0) continue;
    for (size_t j = i; j > 0 && ccc[j - 1] > ccc[j]; --j) {
      std::swap(ccc[j - 1], ccc[j]);
      std::swap(chars[j - 1], chars[j]);
    }
  }

  size_t kept = 0;
  size_t starter = SIZE_MAX;  // Index in the kept prefix of the last starter.
  for (size_t i = 0; i < chars.size(); ++i) {
    const uint32_t cp = chars[i];
    const uint8_t cls = ccc[i];
    if (starter != SIZE_MAX) {
      // After canonical ordering the last kept character has the highest class since the
      // starter, so it alone decides whether cp is blocked.
      const bool adjacent = kept - 1 == starter;
      const bool blocked = !adjacent && (ccc[kept - 1] == 0 || ccc[kept - 1] >= cls);
      if (!blocked) {
        const uint32_t composite = Compose(chars[starter], cp);
        if (composite != 0) {
          chars[starter] = composite;
          continue;
        }
      }
    }
    if (cls == 0) starter = kept;
    chars[kept] = cp;
    ccc[kept] = cls;
    ++kept;
  }

  out->clear();
  out->reserve(s.size());
  for (size_t i = 0; i < kept; ++i) AppendUtf8(chars[i], out);
}

// ------------------------------------------------------------------------------------------------
// The GPT-2 pre-tokenizer.

struct CharAt {
  uint32_t cp;
  uint32_t length;
  CharClass cls;
};

inline CharAt ReadChar(const unsigned char* p) {
  CharAt c;
  c.cp = DecodeValid(p, &c.length);
  c.cls = ClassOf(c.cp);
  return c;
}

// Calls fn(piece) for each match of
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// over valid UTF-8, with the regex's semantics: at each position the first alternative that
// matches wins, and each `+` is greedy.
template <typename Fn>
void ForEachGpt2Piece(std::string_view s, Fn&& fn) {
  const unsigned char* p = Bytes(s);
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const CharAt c = ReadChar(p + i);
    // 's 't 're 've 'm 'll 'd (ASCII lower case only, as in the regex).
    if (c.cp == '\'' && i + 1 < n) {
      const char a = static_cast<char>(p[i + 1]);
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        fn(s.substr(i, 2));
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const char b = static_cast<char>(p[i + 2]);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
          fn(s.substr(i, 3));
          i += 3;
          continue;
        }
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: a run of one class, after an optional space
    // (U+0020 only). Every character that is not white space is in exactly one of the classes.
    size_t run = i;
    CharClass run_class = c.cls;
    if (c.cp == ' ' && i + 1 < n) {
      const CharAt next = ReadChar(p + i + 1);
      if (next.cls != kSpace) {
        run = i + 1;
        run_class = next.cls;
      }
    }
    if (run_class != kSpace) {
      size_t k = run;
      while (k < n) {
        if (p[k] < 0x80) {
          if (kAsciiClasses[p[k]] != run_class) break;
          ++k;
          continue;
        }
        const CharAt next = ReadChar(p + k);
        if (next.cls != run_class) break;
        k += next.length;
      }
      fn(s.substr(i, k - i));
      i = k;
      continue;
    }
    // `\s+(?!\S)` takes the white-space run up to the end of the text, or up to (not including)
    // its last character when something else follows (backtracking one character makes the
    // lookahead see white space). A single white-space character before a non-space is left to
    // `\s+`.
    size_t k = i;
    size_t last = i;
    while (k < n) {
      const CharAt next = ReadChar(p + k);
      if (next.cls != kSpace) break;
      last = k;
      k += next.length;
    }
    const size_t stop = (k == n || last == i) ? k : last;
    fn(s.substr(i, stop - i));
    i = stop;
  }
}

// ------------------------------------------------------------------------------------------------
// Byte-to-unicode (GPT-2's bytes_to_unicode): printable bytes stand for themselves, the others
// are moved to U+0100 and up in byte order, so every byte has a visible, non-space stand-in.

constexpr bool IsPrintableByte(uint32_t b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

constexpr std::array<uint16_t, 256> MakeByteToUnicode() {
  std::array<uint16_t, 256> table{};
  uint16_t next = 0x100;
  for (uint32_t b = 0; b < 256; ++b) {
    table[b] = IsPrintableByte(b) ? static_cast<uint16_t>(b) : next++;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kByteToUnicode = MakeByteToUnicode();

// The stand-ins are U+0000..U+0143; the inverse maps each to its byte, or -1 when unused.
constexpr uint32_t kStandInLimit = 0x144;
constexpr std::array<int16_t, kStandInLimit> MakeUnicodeToByte() {
  std::array<int16_t, kStandInLimit> table{};
  for (int16_t& v : table) v = -1;
  for (uint32_t b = 0; b < 256; ++b) table[kByteToUnicode[b]] = static_cast<int16_t>(b);
  return table;
}
constexpr std::array<int16_t, kStandInLimit> kUnicodeToByte = MakeUnicodeToByte();
static_assert(kByteToUnicode[255] < kStandInLimit && kByteToUnicode[' '] == 0x120);

// The byte a stand-in character means, or -1 when it is not one.
int UnicodeToByte(uint32_t cp) { return cp < kStandInLimit ? kUnicodeToByte[cp] : -1; }

// ------------------------------------------------------------------------------------------------
// Lookup structures.

// Merge ranks keyed by the pair of token ids, in an open-addressing table: the BPE loop looks up
// every adjacent pair, so this is the hottest data structure of encoding.
class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t merged = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  void Reserve(size_t count) {
    size_t capacity = 16;
    // At most half full, so probes stay short.
    while (capacity < 2 * count) capacity *= 2;
    entries_.assign(capacity, Entry{});
    mask_ = capacity - 1;
  }

  // Inserts or overwrites (a later duplicate merge wins, as in Hugging Face's HashMap).
  void Put(int32_t left, int32_t right, int32_t rank, int32_t merged) {
    const uint64_t key = Key(left, right);
    for (size_t slot = Hash(key);; slot = (slot + 1) & mask_) {
      Entry& e = entries_[slot];
      if (e.key == kEmpty || e.key == key) {
        e = {key, rank, merged};
        return;
      }
    }
  }

  // The entry for the pair, or null.
  const Entry* Find(int32_t left, int32_t right) const {
    const uint64_t key = Key(left, right);
    for (size_t slot = Hash(key);; slot = (slot + 1) & mask_) {
      const Entry& e = entries_[slot];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }

 private:
  static uint64_t Key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  size_t Hash(uint64_t key) const {
    // Fibonacci hashing: the multiply spreads both ids over the high bits.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
  }

  std::vector<Entry> entries_;
  size_t mask_ = 0;
};

// A byte trie of the added tokens, for leftmost-longest matching.
class AddedTrie {
 public:
  AddedTrie() : nodes_(1) {}

  void Add(std::string_view content, int32_t id) {
    int32_t node = 0;
    for (unsigned char b : content) {
      int32_t child = Child(node, b);
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(b, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    nodes_[node].id = id;
    first_byte_[Bytes(content)[0]] = true;
  }

  bool empty() const { return nodes_.size() == 1; }

  // Splits `text` at the leftmost-longest matches: on_text(piece) for the text between them
  // (never empty) and on_token(id) for each match, in order.
  template <typename TextFn, typename TokenFn>
  void Split(std::string_view text, TextFn&& on_text, TokenFn&& on_token) const {
    const unsigned char* p = Bytes(text);
    const size_t n = text.size();
    size_t piece_start = 0;
    size_t i = 0;
    while (i < n) {
      if (!first_byte_[p[i]]) {
        ++i;
        continue;
      }
      int32_t node = 0;
      int32_t best_id = -1;
      size_t best_end = 0;
      for (size_t k = i; k < n; ++k) {
        node = Child(node, p[k]);
        if (node < 0) break;
        if (nodes_[node].id >= 0) {
          best_id = nodes_[node].id;
          best_end = k + 1;
        }
      }
      if (best_id < 0) {
        ++i;
        continue;
      }
      if (i > piece_start) on_text(text.substr(piece_start, i - piece_start));
      on_token(best_id);
      i = piece_start = best_end;
    }
    if (n > piece_start) on_text(text.substr(piece_start));
  }

 private:
  struct Node {
    int32_t id = -1;
    std::vector<std::pair<unsigned char, int32_t>> children;
  };

  int32_t Child(int32_t node, unsigned char b) const {
    for (const auto& [byte, child] : nodes_[node].children) {
      if (byte == b) return child;
    }
    return -1;
  }

  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
};

// Words up to this many symbols use the quadratic scan, which beats a heap on the short words
// that make up almost all text; longer ones (long CJK runs, repeated punctuation) use the heap.
constexpr size_t kSmallWord = 48;

// Per-call scratch for BPE, reused across the words of one Encode call.
struct BpeScratch {
  std::vector<int32_t> ids;
  std::vector<int32_t> ranks;
  std::vector<int32_t> merged;
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols;
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t left;
    int32_t right;
    int32_t merged;
    // Lowest rank first, then leftmost (the order Hugging Face's merge queue uses).
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Candidate> heap;
};

}  // namespace

// ------------------------------------------------------------------------------------------------
// Tokenizer.

struct Tokenizer::Impl {
  std::vector<std::string> tokens;       // As stored, by id.
  std::vector<std::string> token_bytes;  // Decoded bytes, by id.
  std::vector<bool> special;
  std::unordered_map<std::string_view, int32_t> token_ids;  // Views into `tokens`.
  std::array<int32_t, 256> byte_ids{};                      // -1 when a byte has no token.
  MergeTable merges;
  AddedTrie raw_added;         // Matched on the text as given.
  AddedTrie normalized_added;  // Matched on the normalized text.
  bool nfc = false;

  void EncodeWord(std::string_view bytes, BpeScratch* scratch, std::vector<int32_t>* out) const;
  void EncodeBpe(std::string_view text, std::vector<int32_t>* ids) const;
};

void Tokenizer::Impl::EncodeWord(std::string_view bytes, BpeScratch* scratch,
                                 std::vector<int32_t>* out) const {
  std::vector<int32_t>& ids = scratch->ids;
  ids.clear();
  // A byte without a token is dropped, as Hugging Face drops characters missing from the vocab
  // when there is no unknown token (byte_ids holds the unknown token when there is one).
  for (unsigned char b : bytes) {
    if (byte_ids[b] >= 0) ids.push_back(byte_ids[b]);
  }
  const size_t n = ids.size();
  if (n <= 1) {
    out->insert(out->end(), ids.begin(), ids.end());
    return;
  }

  if (n <= kSmallWord) {
    // Keep the rank and result of each adjacent pair; each merge changes only its neighbours.
    std::vector<int32_t>& ranks = scratch->ranks;
    std::vector<int32_t>& merged = scratch->merged;
    ranks.resize(n);
    merged.resize(n);
    auto update = [&](size_t i) {
      const MergeTable::Entry* e = merges.Find(ids[i], ids[i + 1]);
      ranks[i] = e != nullptr ? e->rank : INT_MAX;
      merged[i] = e != nullptr ? e->merged : -1;
    };
    size_t count = n;
    for (size_t i = 0; i + 1 < count; ++i) update(i);
    while (count > 1) {
      size_t best = 0;
      for (size_t i = 1; i + 1 < count; ++i) {
        if (ranks[i] < ranks[best]) best = i;
      }
      if (ranks[best] == INT_MAX) break;
      ids[best] = merged[best];
      for (size_t i = best + 1; i + 1 < count; ++i) {
        ids[i] = ids[i + 1];
        ranks[i] = ranks[i + 1];
        merged[i] = merged[i + 1];
      }
      --count;
      if (best > 0) update(best - 1);
      if (best + 1 < count) update(best);
    }
    out->insert(out->end(), ids.begin(), ids.begin() + static_cast<ptrdiff_t>(count));
    return;
  }

  // Long words: a linked list of symbols and a queue of candidate merges ordered by (rank,
  // position). A candidate is stale when either side has merged since; it is then skipped.
  auto& symbols = scratch->symbols;
  auto& heap = scratch->heap;
  symbols.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    symbols[i] = {ids[i], static_cast<int32_t>(i) - 1,
                  i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  }
  auto push = [&](int32_t pos) {
    if (pos < 0 || symbols[pos].next < 0) return;
    const int32_t next = symbols[pos].next;
    const MergeTable::Entry* e = merges.Find(symbols[pos].id, symbols[next].id);
    if (e == nullptr) return;
    heap.push_back({e->rank, pos, symbols[pos].id, symbols[next].id, e->merged});
    std::push_heap(heap.begin(), heap.end());
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const BpeScratch::Candidate top = heap.back();
    heap.pop_back();
    BpeScratch::Symbol& left = symbols[top.pos];
    // A merged-away symbol has id -1; token byte lengths only grow, so matching ids prove the
    // candidate is current.
    if (left.id != top.left || left.next < 0 || symbols[left.next].id != top.right) continue;
    const int32_t right_pos = left.next;
    left.id = top.merged;
    left.next = symbols[right_pos].next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    symbols[right_pos].id = -1;
    push(left.prev);
    push(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out->push_back(symbols[i].id);
}

void Tokenizer::Impl::EncodeBpe(std::string_view text, std::vector<int32_t>* ids) const {
  BpeScratch scratch;
  std::string normalized;
  auto encode_words = [&](std::string_view piece) {
    ForEachGpt2Piece(piece, [&](std::string_view word) { EncodeWord(word, &scratch, ids); });
  };
  auto push_token = [&](int32_t id) { ids->push_back(id); };
  raw_added.Split(
      text,
      [&](std::string_view piece) {
        std::string_view norm = piece;
        if (nfc && !IsNfcQuickImpl(piece)) {
          NfcSlow(piece, &normalized);
          norm = normalized;
        }
        if (normalized_added.empty()) {
          encode_words(norm);
        } else {
          normalized_added.Split(norm, encode_words, push_token);
        }
      },
      push_token);
}

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromFlatbuffer(const fb::Tokenizer& table) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  Impl& impl = *t->impl_;
  t->kind_ = table.kind();
  if (t->kind_ != fb::TokenizerKind::Bytes && t->kind_ != fb::TokenizerKind::BPE) {
    return Unsupported("tokenizer: kind " + std::to_string(static_cast<int>(table.kind())) + " (" +
                       fb::EnumNameTokenizerKind(table.kind()) + ") cannot encode text");
  }

  if (table.tokens() != nullptr) {
    impl.tokens.reserve(table.tokens()->size());
    for (const flatbuffers::String* s : *table.tokens()) {
      impl.tokens.emplace_back(s != nullptr ? s->string_view() : std::string_view());
    }
  }
  const bool bytes_kind = t->kind_ == fb::TokenizerKind::Bytes;
  if (bytes_kind && impl.tokens.size() < 256) impl.tokens.resize(256);
  if (impl.tokens.empty()) return Corrupt("tokenizer: BPE tokenizer has no tokens");
  if (impl.tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return Corrupt("tokenizer: too many tokens");
  }
  const auto vocab = static_cast<int32_t>(impl.tokens.size());
  t->vocab_size_ = vocab;

  auto check_id = [&](int32_t id, const char* what) -> Status {
    if (id < -1 || id >= vocab) {
      return Corrupt("tokenizer: " + std::string(what) + " " + std::to_string(id) +
                     " is outside the vocabulary of " + std::to_string(vocab) + " tokens");
    }
    return Status::Ok();
  };
  RECUR_RETURN_IF_ERROR(check_id(table.bos_id(), "bos_id"));
  RECUR_RETURN_IF_ERROR(check_id(table.eos_id(), "eos_id"));
  RECUR_RETURN_IF_ERROR(check_id(table.pad_id(), "pad_id"));
  RECUR_RETURN_IF_ERROR(check_id(table.unk_id(), "unk_id"));
  t->bos_id_ = table.bos_id();
  t->eos_id_ = table.eos_id();
  t->pad_id_ = table.pad_id();
  t->unk_id_ = table.unk_id();

  impl.special.assign(impl.tokens.size(), false);
  if (table.special() != nullptr) {
    for (int32_t id : *table.special()) {
      if (id < 0 || id >= vocab) {
        return Corrupt("tokenizer: special id " + std::to_string(id) +
                       " is outside the vocabulary of " + std::to_string(vocab) + " tokens");
      }
      impl.special[id] = true;
    }
  }

  // Added tokens decode as their plain content; the rest of a byte-level vocabulary decodes
  // through the byte-to-unicode alphabet.
  std::vector<bool> is_added(impl.tokens.size(), false);
  if (table.added() != nullptr && table.added()->size() > 0) {
    if (bytes_kind) return Unsupported("tokenizer: a byte tokenizer cannot have added tokens");
    for (const fb::AddedToken* a : *table.added()) {
      if (a == nullptr || a->content() == nullptr || a->content()->size() == 0) {
        return Corrupt("tokenizer: an added token has no content");
      }
      const int32_t id = a->id();
      if (id < 0 || id >= vocab) {
        return Corrupt("tokenizer: added token id " + std::to_string(id) +
                       " is outside the vocabulary of " + std::to_string(vocab) + " tokens");
      }
      const std::string_view content = a->content()->string_view();
      if (FindInvalidUtf8(content) != std::string_view::npos) {
        return Corrupt("tokenizer: added token " + std::to_string(id) + " is not valid UTF-8");
      }
      impl.tokens[id] = std::string(content);
      is_added[id] = true;
      if (a->special()) impl.special[id] = true;
      if (a->normalized()) {
        // Hugging Face matches normalized added tokens by their normalized content.
        const std::string norm =
            table.normalizer() != nullptr && table.normalizer()->string_view() == "nfc"
                ? tokenizer_internal::NormalizeNfc(content)
                : std::string(content);
        impl.normalized_added.Add(norm, id);
      } else {
        impl.raw_added.Add(content, id);
      }
    }
  }

  impl.token_bytes.resize(impl.tokens.size());
  if (bytes_kind) {
    for (int32_t id = 0; id < vocab; ++id) {
      impl.token_bytes[id] = id < 256 ? std::string(1, static_cast<char>(id)) : impl.tokens[id];
    }
    return t;
  }

  const std::string_view pre =
      table.pre_tokenizer() != nullptr ? table.pre_tokenizer()->string_view() : std::string_view();
  if (pre != "gpt2") {
    return Unsupported("tokenizer: pre_tokenizer \"" + std::string(pre) +
                       "\" is not supported (only \"gpt2\", the byte-level GPT-2 split)");
  }
  const std::string_view normalizer =
      table.normalizer() != nullptr ? table.normalizer()->string_view() : std::string_view();
  if (normalizer == "nfc") {
    impl.nfc = true;
  } else if (!normalizer.empty()) {
    return Unsupported("tokenizer: normalizer \"" + std::string(normalizer) +
                       "\" is not supported (only \"nfc\" or none)");
  }

  // Token lookup: the model's tokens first, so that an added token whose content happens to
  // equal a byte-level string never shadows it.
  impl.token_ids.reserve(impl.tokens.size() * 2);
  for (int32_t id = 0; id < vocab; ++id) {
    if (!is_added[id] && !impl.tokens[id].empty()) impl.token_ids.emplace(impl.tokens[id], id);
  }
  for (int32_t id = 0; id < vocab; ++id) {
    if (is_added[id]) impl.token_ids.emplace(impl.tokens[id], id);
  }

  for (int32_t id = 0; id < vocab; ++id) {
    const std::string& s = impl.tokens[id];
    std::string& bytes = impl.token_bytes[id];
    if (is_added[id]) {
      bytes = s;
      continue;
    }
    // As Hugging Face's ByteLevel decoder: a token with a character outside the alphabet is
    // passed through as it is.
    const unsigned char* p = Bytes(s);
    const unsigned char* end = p + s.size();
    bool mapped = true;
    while (p < end && mapped) {
      const Utf8Step step = ReadUtf8(p, end);
      const int b = step.kind == Utf8Kind::kValid ? UnicodeToByte(step.cp) : -1;
      if (b < 0) {
        mapped = false;
      } else {
        bytes.push_back(static_cast<char>(b));
        p += step.length;
      }
    }
    if (!mapped) bytes = s;
  }

  for (int b = 0; b < 256; ++b) {
    const auto it = impl.token_ids.find(tokenizer_internal::ByteToUnicode(static_cast<uint8_t>(b)));
    impl.byte_ids[b] = it != impl.token_ids.end() ? it->second : t->unk_id_;
  }

  const auto* merges = table.merges();
  const size_t merge_count = merges != nullptr ? merges->size() : 0;
  if (merge_count > static_cast<size_t>(INT32_MAX)) return Corrupt("tokenizer: too many merges");
  impl.merges.Reserve(merge_count);
  std::string joined;
  for (size_t rank = 0; rank < merge_count; ++rank) {
    const flatbuffers::String* m = merges->Get(static_cast<flatbuffers::uoffset_t>(rank));
    const std::string_view merge = m != nullptr ? m->string_view() : std::string_view();
    const size_t space = merge.find(' ');
    auto bad = [&](const std::string& why) {
      return Corrupt("tokenizer: merge " + std::to_string(rank) + " \"" + std::string(merge) +
                     "\": " + why);
    };
    if (space == std::string_view::npos || space == 0 || space + 1 == merge.size() ||
        merge.find(' ', space + 1) != std::string_view::npos) {
      return bad("expected two tokens separated by one space");
    }
    const std::string_view left = merge.substr(0, space);
    const std::string_view right = merge.substr(space + 1);
    joined.assign(left);
    joined.append(right);
    const auto l = impl.token_ids.find(left);
    const auto r = impl.token_ids.find(right);
    const auto j = impl.token_ids.find(joined);
    if (l == impl.token_ids.end()) return bad("\"" + std::string(left) + "\" is not a token");
    if (r == impl.token_ids.end()) return bad("\"" + std::string(right) + "\" is not a token");
    if (j == impl.token_ids.end()) return bad("\"" + joined + "\" is not a token");
    impl.merges.Put(l->second, r->second, static_cast<int32_t>(rank), j->second);
  }
  return t;
}

Status Tokenizer::Encode(std::string_view utf8, std::vector<int32_t>* ids) const {
  if (ids == nullptr) return InvalidArgument("tokenizer: Encode: ids is null");
  if (kind_ == fb::TokenizerKind::Bytes) {
    for (unsigned char b : utf8) ids->push_back(b);
    return Status::Ok();
  }
  const size_t bad = FindInvalidUtf8(utf8);
  if (bad != std::string_view::npos) {
    return InvalidArgument("tokenizer: text is not valid UTF-8 at byte " + std::to_string(bad));
  }
  impl_->EncodeBpe(utf8, ids);
  return Status::Ok();
}

std::string_view Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return {};
  return impl_->token_bytes[id];
}

std::string_view Tokenizer::TokenString(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return {};
  return impl_->tokens[id];
}

int32_t Tokenizer::TokenId(std::string_view token) const {
  if (kind_ == fb::TokenizerKind::Bytes) {
    if (token.size() == 1) return static_cast<unsigned char>(token[0]);
    for (int32_t id = 256; id < vocab_size_; ++id) {
      if (impl_->tokens[id] == token) return id;
    }
    return -1;
  }
  const auto it = impl_->token_ids.find(token);
  return it != impl_->token_ids.end() ? it->second : -1;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size_ && impl_->special[id];
}

std::string Tokenizer::Decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += TokenBytes(id);
  return out;
}

// ------------------------------------------------------------------------------------------------
// TokenStreamDecoder.

namespace {

// Moves the complete characters at the front of `pending` to the result, replacing invalid
// sequences with U+FFFD; an incomplete character at the end stays unless `flush`.
std::string TakeComplete(std::string* pending, bool flush) {
  std::string out;
  const unsigned char* p = Bytes(*pending);
  const unsigned char* end = p + pending->size();
  const unsigned char* q = p;
  while (q < end) {
    const Utf8Step step = ReadUtf8(q, end);
    if (step.kind == Utf8Kind::kIncomplete && !flush) break;
    if (step.kind == Utf8Kind::kValid) {
      out.append(reinterpret_cast<const char*>(q), step.length);
    } else {
      out += kReplacementUtf8;
    }
    q += step.length;
  }
  pending->erase(0, static_cast<size_t>(q - p));
  return out;
}

}  // namespace

std::string TokenStreamDecoder::Next(int32_t id) {
  pending_ += tokenizer_->TokenBytes(id);
  return TakeComplete(&pending_, /*flush=*/false);
}

std::string TokenStreamDecoder::Flush() { return TakeComplete(&pending_, /*flush=*/true); }

// ------------------------------------------------------------------------------------------------
// tokenizer_internal.

namespace tokenizer_internal {

std::string NormalizeNfc(std::string_view utf8) {
  if (IsNfcQuickImpl(utf8)) return std::string(utf8);
  std::string out;
  NfcSlow(utf8, &out);
  return out;
}

bool IsNfcQuick(std::string_view utf8) { return IsNfcQuickImpl(utf8); }

std::string_view UnicodeVersion() { return kUnicodeVersion; }

std::vector<std::string_view> PreTokenizeGpt2(std::string_view utf8) {
  std::vector<std::string_view> pieces;
  if (FindInvalidUtf8(utf8) != std::string_view::npos) {
    pieces.push_back(utf8);
    return pieces;
  }
  ForEachGpt2Piece(utf8, [&](std::string_view piece) { pieces.push_back(piece); });
  return pieces;
}

std::string ByteToUnicode(uint8_t byte) {
  std::string s;
  AppendUtf8(kByteToUnicode[byte], &s);
  return s;
}

}  // namespace tokenizer_internal
}  // namespace recur
