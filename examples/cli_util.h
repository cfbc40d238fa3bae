// Small helpers shared by the CLI's subcommands.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

namespace recur::cli {

// Draws "[=====>    ]  45%  120.0/266.7 MiB" on stderr: redrawn in place on a terminal, a line
// per 10% otherwise (logs and CI).
class ProgressBar {
 public:
  ProgressBar(bool quiet, const char* verb)
      : quiet_(quiet), tty_(isatty(STDERR_FILENO) == 1), verb_(verb) {}

  void Update(uint64_t done, uint64_t total) {
    // Small models convert in a blink; a bar would only be noise.
    constexpr uint64_t kMinBytesForBar = 64ull << 20;
    if (quiet_ || total < kMinBytesForBar) return;
    const int percent = static_cast<int>(done * 100 / total);
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      if (done != total && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
      constexpr int kWidth = 30;
      const int filled = percent * kWidth / 100;
      std::string bar(filled, '=');
      if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
      std::fprintf(stderr, "\r[%s] %3d%%  %.1f/%.1f MiB", bar.c_str(), percent, done / 1048576.0,
                   total / 1048576.0);
      if (done == total) std::fputc('\n', stderr);
    } else if (percent / 10 > last_decile_ || done == total) {
      last_decile_ = percent / 10;
      if (done == total && printed_done_) return;
      printed_done_ = done == total;
      std::fprintf(stderr, "%s: %3d%% (%.1f/%.1f MiB)\n", verb_, percent, done / 1048576.0,
                   total / 1048576.0);
    }
  }

 private:
  bool quiet_, tty_;
  const char* verb_;  // "converting": the word of the per-10% lines.
  int last_decile_ = -1;
  bool printed_done_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// Peak resident memory of this process, from /proc/self/status (0 when unknown).
inline uint64_t PeakRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace recur::cli
