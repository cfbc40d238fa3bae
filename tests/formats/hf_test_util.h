// Helpers shared by the Hugging Face mapping tests.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "formats/convert.h"
#include "tests/test_util.h"

namespace recur::testing {

// Writes `text` as dir/config.json and loads it (mappings read nested keys from the file).
inline HfConfig WriteConfig(const TempDir& dir, const std::string& text) {
  std::ofstream(dir.File("config.json")) << text;
  auto config = HfConfig::Load(dir.File("config.json"));
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  return *config;
}

// The message of a mapping that must fail.
inline std::string Error(const Result<HfMapping>& r) {
  REQUIRE(!r.ok());
  return r.status().message();
}

}  // namespace recur::testing
