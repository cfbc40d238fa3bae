// Tests bench/context_budget.h, the time prediction memory_vs_context uses to skip a context
// length before starting it. The long run's "stalled" windowed family was the MQA cache family
// before it prefilling 64k tokens, O(T^2), after the old rule (stop once a quarter of the budget
// is used) let it start; these cases pin the arithmetic that now stops it.
#include "bench/context_budget.h"

#include <doctest/doctest.h>

namespace recur::bench {
namespace {

TEST_CASE("StreamCost: linear for recurrent models, T(T+1)/2 keys for a cache, capped by a window") {
  CHECK(StreamCost(1000, 0, 7.0) == doctest::Approx(7000.0));
  CHECK(StreamCost(1000, -1, 0.0) == doctest::Approx(1000.0 * 1001 / 2));
  CHECK(StreamCost(1000, -1, 3.0) == doctest::Approx(3000.0 + 1000.0 * 1001 / 2));
  // A window equals the cache while T <= W, then adds W keys a token.
  CHECK(StreamCost(4096, 4096, 0.0) == doctest::Approx(StreamCost(4096, -1, 0.0)));
  CHECK(StreamCost(5096, 4096, 0.0) ==
        doctest::Approx(StreamCost(4096, -1, 0.0) + 1000.0 * 4096));
  CHECK(StreamCost(0, -1, 5.0) == 0.0);
}

TEST_CASE("PredictSeconds: a cache's next length costs ~T^2, a recurrent one's ~T") {
  const double fixed = 6.0 * 768;  // memory_vs_context's per-token work at d_model 768.
  // Recurrent: 4x the tokens, 3x the time so far again.
  CHECK(PredictSeconds(10.0, 16384, 65536, 0, fixed) == doctest::Approx(30.0));
  // The long run's MQA cache: 16k tokens in 50 s. The old rule (stop once 240 / 4 s are used)
  // let it start 64k; the prediction says it needs far more than the 240 s budget.
  const double more = PredictSeconds(50.0, 16384, 65536, -1, fixed);
  CHECK(more > 10 * 50.0);
  CHECK(50.0 + more > 240.0);
  // Without the per-token term the ratio is exactly the keys' ratio, (64k^2 - 16k^2) / 16k^2 ~ 15.
  CHECK(PredictSeconds(1.0, 16384, 65536, -1, 0.0) ==
        doctest::Approx((65536.0 * 65537 - 16384.0 * 16385) / (16384.0 * 16385)));
  // A window past W grows linearly: 64k -> 256k costs ~3x again (exactly, with no fixed term,
  // (256k - 64k) W / cost(64k)).
  const double w = 4096;
  const double cost64 = w * (w + 1) / 2 + (65536 - w) * w;
  CHECK(PredictSeconds(1.0, 65536, 262144, 4096, 0.0) ==
        doctest::Approx((262144.0 - 65536) * w / cost64));
  CHECK(PredictSeconds(1.0, 65536, 262144, 4096, 0.0) < 3.2);
  // Nothing to do, or nothing measured: 0.
  CHECK(PredictSeconds(5.0, 4096, 4096, -1, fixed) == 0.0);
  CHECK(PredictSeconds(5.0, 0, 4096, -1, fixed) == 0.0);
}

}  // namespace
}  // namespace recur::bench
