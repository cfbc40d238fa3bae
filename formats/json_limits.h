// Bounded JSON parsing for the importers: nlohmann-json parses iteratively, but dumping and some
// walks recurse, so input nested deeper than any real config is refused while parsing.
#pragma once

#include <stdexcept>
#include <nlohmann/json.hpp>

namespace recur {

// Deeper than any config.json, tokenizer.json, spec or safetensors header in the wild.
inline constexpr int kMaxJsonDepth = 128;

// Throws (inside the caller's try) when `depth` exceeds kMaxJsonDepth; for parse callbacks.
inline void CheckJsonDepth(int depth) {
  if (depth > kMaxJsonDepth) {
    throw std::runtime_error("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
}

// nlohmann::json::parse with the depth limit. Throws like parse does; callers catch.
template <class Input>
nlohmann::json ParseJsonBounded(Input&& input) {
  return nlohmann::json::parse(std::forward<Input>(input),
                               [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
                                 CheckJsonDepth(depth);
                                 return true;
                               });
}

template <class It>
nlohmann::json ParseJsonBounded(It begin, It end) {
  return nlohmann::json::parse(begin, end,
                               [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
                                 CheckJsonDepth(depth);
                                 return true;
                               });
}

}  // namespace recur
