// capi_make_model OUT.recur [SEED]: writes the mixed mamba1 + mlp + mamba2 test model
// (tests/capi/test_models.h) for the C and install tests, which cannot write models themselves.
#include <cstdio>
#include <cstdlib>

#include "tests/capi/test_models.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.recur [SEED]\n", argv[0]);
    return 2;
  }
  const uint32_t seed = argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)) : 7;
  const recur::Status st = recur::testing::WriteMixedModel(argv[1], seed);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
