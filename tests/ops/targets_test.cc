// Which Highway targets the ops tests cover on this machine (ForEachTarget in elem_test_util.h
// loops over exactly these), and whether each dispatched target really runs with the vector width
// it claims. The list is printed so that a CI log records it (docs/arm.md); RECUR_EXPECT_TARGETS
// (target names separated by spaces, e.g. "NEON SVE SVE2") makes the test fail when one of them is
// missing, so a cross-built run under qemu proves that its NEON and SVE code paths were tested.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/prctl.h>
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tests/ops/targets_test.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::testing {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Bytes in one f32 vector of the target this was compiled for, as its kernels see it.
size_t FloatVectorBytes() { return hn::Lanes(hn::ScalableTag<float>()) * sizeof(float); }

}  // namespace HWY_NAMESPACE
}  // namespace recur::ops::testing
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "tests/ops/elem_test_util.h"

namespace recur::ops::testing {
namespace {

HWY_EXPORT(FloatVectorBytes);

// The SVE vector length the kernel gives this process (qemu: QEMU_CPU=max,sve<N>=on or
// sve-default-vector-length), or 0 without SVE.
size_t SveVectorBytes() {
#if defined(__aarch64__) && defined(__linux__) && defined(PR_SVE_GET_VL)
  const int vl = prctl(PR_SVE_GET_VL);
  return vl < 0 ? 0 : static_cast<size_t>(vl & PR_SVE_VL_LEN_MASK);
#else
  return 0;
#endif
}

TEST_CASE("hwy targets: every dispatched target runs at its own vector width") {
  // Fixed-width targets; SVE and SVE2 take the hardware's (the kernel's) vector length.
  const std::map<std::string, size_t> fixed = {
      {"SCALAR", 4}, {"EMU128", 16}, {"SSSE3", 16},   {"SSE4", 16},     {"AVX2", 32},
      {"AVX3", 64},  {"AVX3_DL", 64}, {"NEON", 16}, {"SVE_256", 32}, {"SVE2_128", 16}};
  const size_t sve_bytes = SveVectorBytes();
  std::ostringstream covered;
  ForEachTarget([&](const std::string& name) {
    const size_t bytes = HWY_DYNAMIC_DISPATCH(FloatVectorBytes)();
    covered << " " << name << "(" << bytes * 8 << " bit)";
    if (name == "SVE" || name == "SVE2") {
      CHECK(bytes == sve_bytes);
    } else if (fixed.count(name) != 0) {
      CHECK(bytes == fixed.at(name));
    }
  });
  MESSAGE("Highway targets covered by the ops tests:", covered.str(),
          sve_bytes != 0 ? " | SVE vector length " + std::to_string(sve_bytes * 8) + " bit"
                         : std::string());

  const char* expect = std::getenv("RECUR_EXPECT_TARGETS");
  if (expect == nullptr) return;
  std::istringstream want(expect);
  for (std::string name; want >> name;) {
    CHECK_MESSAGE(covered.str().find(" " + name + "(") != std::string::npos,
                  "RECUR_EXPECT_TARGETS names ", name, ", which is not among the targets covered");
  }
}

}  // namespace
}  // namespace recur::ops::testing
#endif  // HWY_ONCE
