// Small helpers shared by the tests: temporary folders and the shared fixtures' location.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

namespace recur::testing {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("recur-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// True when `part` occurs in `s` (for checking what an error message names).
inline bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Writes `text` to `path` as is (binary, no newline translation).
inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// ../shared beside the checkout (fixtures, real models, tokenizers), or "" when it is absent:
// tests that need it say they are skipped.
inline std::string SharedDir() {
#ifdef RECUR_SHARED_DIR
  if (std::filesystem::exists(RECUR_SHARED_DIR "/fixtures")) return RECUR_SHARED_DIR;
#endif
  return "";
}

}  // namespace recur::testing
