// How long streaming a model to a longer context will take, predicted from the time the shorter
// context took, so that memory_vs_context can skip a length that would blow its time budget
// before starting it instead of after. Header-only; tested in tests/runtime/context_budget_test.cc.
//
// Why: the budget check used to be "stop once a family has used a quarter of its budget",
// assuming the next length costs at most about as much again. For a KV cache the prefill is
// O(T^2), so the next length (4x the tokens) costs ~16x: a cache family that reached 16k tokens
// inside the quarter then spent many minutes prefilling 64k, which looked like the next family
// (the windowed one) stalling.
#pragma once

#include <algorithm>
#include <cstdint>

namespace recur::bench {

// Work to stream `tokens` tokens from an empty state, in units of one attended key of one token:
// every token costs `fixed` units (projections, MLP: the per-token work that does not depend on
// the history) plus one unit per earlier key it attends to: none for recurrent models
// (attended == 0), all of them for a KV cache (attended < 0), at most `attended` for a window.
inline double StreamCost(int64_t tokens, int64_t attended, double fixed) {
  const double t = static_cast<double>(std::max<int64_t>(tokens, 0));
  double keys = 0.0;  // sum over tokens i = 1..t of the keys token i attends to.
  if (attended < 0) {
    keys = t * (t + 1) / 2;
  } else if (attended > 0) {
    const double w = static_cast<double>(attended);
    keys = t <= w ? t * (t + 1) / 2 : w * (w + 1) / 2 + (t - w) * w;
  }
  return t * fixed + keys;
}

// Seconds still needed to go from `done` tokens (which took `elapsed` seconds) to `next` tokens,
// at the rate measured so far.
inline double PredictSeconds(double elapsed, int64_t done, int64_t next, int64_t attended,
                             double fixed) {
  const double so_far = StreamCost(done, attended, fixed);
  if (so_far <= 0.0 || next <= done) return 0.0;
  return elapsed * (StreamCost(next, attended, fixed) - so_far) / so_far;
}

}  // namespace recur::bench
