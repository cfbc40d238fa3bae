# Cross-compiling recur for 64-bit Arm Linux with Debian's cross compiler (g++-aarch64-linux-gnu)
# against the arm64 multiarch packages of the dependencies (libhwy-dev:arm64, libtbb-dev:arm64,
# libflatbuffers-dev:arm64, installed beside the host's by .ci/arm). Tests and build-time helper
# programs run under qemu-user, so `ctest` on an x86 host runs the aarch64 test binaries:
#   cmake -S . -B build-arm -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# See docs/arm.md.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Multiarch: arm64 libraries and their CMake packages live in /usr/lib/aarch64-linux-gnu, which
# find_package and find_library search first because of CMAKE_LIBRARY_ARCHITECTURE. The
# header-only packages (doctest, nlohmann-json, CLI11) are architecture-independent and come from
# /usr/share and /usr/lib/cmake as on the host. No separate sysroot is needed.

# qemu-user runs aarch64 programs (doctest discovery at build time, the demo model generator,
# ctest). -L points it at the cross toolchain's loader and libc; the arm64 multiarch libraries
# are found through the loader's usual /usr/lib/aarch64-linux-gnu path. QEMU_CPU (default "max",
# which has SVE and SVE2) picks the emulated CPU.
find_program(RECUR_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${RECUR_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
