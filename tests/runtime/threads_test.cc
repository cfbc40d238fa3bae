// Tests runtime/threads.h: exact coverage, grain-aligned boundaries, a deterministic split, and
// the inline serial path.
#include "runtime/threads.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace recur {
namespace {

// The ranges one ParallelFor call handed out, sorted by begin.
std::vector<std::pair<size_t, size_t>> Ranges(const Threads& threads, size_t n, size_t grain) {
  std::mutex mutex;
  std::vector<std::pair<size_t, size_t>> ranges;
  threads.ParallelFor(n, grain, [&](size_t begin, size_t end) {
    std::lock_guard<std::mutex> lock(mutex);
    ranges.emplace_back(begin, end);
  });
  std::sort(ranges.begin(), ranges.end());
  return ranges;
}

TEST_CASE("Threads resolves its size") {
  CHECK(Threads(1).size() == 1);
  CHECK(Threads(3).size() == 3);
  CHECK(Threads().size() >= 1);
  CHECK(Threads(0).size() == Threads(-1).size());
}

TEST_CASE("ParallelFor visits every index exactly once with grain-aligned chunks") {
  for (int n_threads : {1, 2, 3, 4}) {
    const Threads threads(n_threads);
    for (size_t n : {0, 1, 2, 7, 16, 17, 100, 1000, 4099}) {
      for (size_t grain : {0, 1, 3, 16, 64, 5000}) {
        CAPTURE(n_threads);
        CAPTURE(n);
        CAPTURE(grain);
        std::vector<std::atomic<int>> visits(n);
        threads.ParallelFor(n, grain, [&](size_t begin, size_t end) {
          CHECK(begin < end);
          CHECK(end <= n);
          CHECK(begin % std::max<size_t>(grain, 1) == 0);
          CHECK((end == n || end % std::max<size_t>(grain, 1) == 0));
          for (size_t i = begin; i < end; ++i) visits[i].fetch_add(1);
        });
        for (size_t i = 0; i < n; ++i) CHECK(visits[i].load() == 1);
        // At most one range per thread.
        CHECK(Ranges(threads, n, grain).size() <= static_cast<size_t>(n_threads));
      }
    }
  }
}

TEST_CASE("ParallelFor splits the same way on every call") {
  const Threads threads(3);
  const auto first = Ranges(threads, 1000, 16);
  CHECK(first.size() == 3);
  // 63 chunks of 16 split 21/21/21.
  CHECK(first[0] == std::make_pair(size_t{0}, size_t{336}));
  CHECK(first[1] == std::make_pair(size_t{336}, size_t{672}));
  CHECK(first[2] == std::make_pair(size_t{672}, size_t{1000}));
  for (int repeat = 0; repeat < 20; ++repeat) CHECK(Ranges(threads, 1000, 16) == first);
}

TEST_CASE("ParallelFor runs small or single-threaded work inline on the caller") {
  const std::thread::id caller = std::this_thread::get_id();
  const Threads single(1);
  int calls = 0;
  single.ParallelFor(1000, 1, [&](size_t begin, size_t end) {
    ++calls;
    CHECK(begin == 0);
    CHECK(end == 1000);
    CHECK(std::this_thread::get_id() == caller);
  });
  CHECK(calls == 1);

  const Threads many(4);
  calls = 0;
  many.ParallelFor(64, 64, [&](size_t begin, size_t end) {
    ++calls;
    CHECK(begin == 0);
    CHECK(end == 64);
    CHECK(std::this_thread::get_id() == caller);
  });
  CHECK(calls == 1);
}

TEST_CASE("ParallelFor produces the same sums on repeated runs") {
  const Threads threads(2);
  std::vector<double> values(10007);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 1.0 / static_cast<double>(i + 1);
  auto run = [&] {
    // Per-range partial sums, combined in range order: deterministic because the split is.
    std::vector<double> partial(values.size(), 0.0);
    threads.ParallelFor(values.size(), 8, [&](size_t begin, size_t end) {
      double sum = 0.0;
      for (size_t i = begin; i < end; ++i) sum += values[i];
      partial[begin] = sum;
    });
    double total = 0.0;
    for (double p : partial) total += p;
    return total;
  };
  const double first = run();
  for (int repeat = 0; repeat < 10; ++repeat) CHECK(run() == first);
}

TEST_CASE("Two Threads instances run side by side") {
  const Threads a(2);
  const Threads b(2);
  std::atomic<size_t> total{0};
  a.ParallelFor(100, 10, [&](size_t begin, size_t end) {
    b.ParallelFor(end - begin, 1, [&](size_t b2, size_t e2) { total += e2 - b2; });
  });
  CHECK(total.load() == 100);
}

}  // namespace
}  // namespace recur
