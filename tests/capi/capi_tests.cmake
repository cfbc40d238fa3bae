# The C API's own tests, beside the doctest suite (tests/runtime/capi_test.cc):
#   capi/make_model    writes the mixed mamba1 + mlp + mamba2 test model (a fixture for the rest)
#   capi/c99_smoke     recur.h compiled as strict C99 with -Wall -Wextra -Werror -pedantic, run
#   capi/no_alloc      stepping, batches and state save/load count zero heap allocations
#   capi/install       cmake --install to a temp prefix; C and C++ consumers built with
#                      find_package(recur) and pkg-config, then run (see tests/capi/install_test.sh)
set(RECUR_CAPI_DIR ${CMAKE_CURRENT_SOURCE_DIR}/capi)
set(RECUR_CAPI_MODEL ${PROJECT_BINARY_DIR}/capi-test-model.recur)

add_executable(capi_make_model ${RECUR_CAPI_DIR}/make_model.cc)
target_include_directories(capi_make_model PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(capi_make_model PRIVATE recur_format)
add_test(NAME capi/make_model COMMAND capi_make_model ${RECUR_CAPI_MODEL})
set_tests_properties(capi/make_model PROPERTIES FIXTURES_SETUP capi_model)

add_executable(capi_c99_smoke ${RECUR_CAPI_DIR}/c99_smoke.c)
set_target_properties(capi_c99_smoke PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON
                      C_EXTENSIONS OFF LINKER_LANGUAGE CXX)
target_compile_options(capi_c99_smoke PRIVATE -Wall -Wextra -Werror -pedantic)
target_include_directories(capi_c99_smoke PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(capi_c99_smoke PRIVATE recur_runtime)
add_test(NAME capi/c99_smoke COMMAND capi_c99_smoke ${RECUR_CAPI_MODEL})
set_tests_properties(capi/c99_smoke PROPERTIES FIXTURES_REQUIRED capi_model)

# Counts malloc through glibc's __libc_* entry points: glibc only, and not under sanitizers
# (which own the allocator).
if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND NOT RECUR_SANITIZE AND NOT RECUR_BUILD_FUZZ)
  add_executable(capi_alloc_test ${RECUR_CAPI_DIR}/alloc_test.cc)
  target_include_directories(capi_alloc_test PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(capi_alloc_test PRIVATE recur_runtime)
  add_test(NAME capi/no_alloc COMMAND capi_alloc_test ${RECUR_CAPI_MODEL})
  set_tests_properties(capi/no_alloc PROPERTIES FIXTURES_REQUIRED capi_model)
endif()

# Batch throughput (not a test): capi_batch_bench --help.
add_executable(capi_batch_bench EXCLUDE_FROM_ALL ${RECUR_CAPI_DIR}/batch_bench.cc)
target_include_directories(capi_batch_bench PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(capi_batch_bench PRIVATE recur_runtime)

# Install to a temp prefix and build consumers against it (needs recur_shared and recur_static,
# which `all` builds).
# Not in sanitizer builds: their librecur.so needs the sanitizer runtime, which the plain
# consumers do not link (the packaging is the same in both builds).
# Nor in cross builds (docs/arm.md): the consumers are built and run with the host's tools; the
# test says it is skipped (ctest's SKIP_RETURN_CODE).
if(CMAKE_CROSSCOMPILING)
  add_test(NAME capi/install COMMAND sh -c
           "echo 'skipped: cross build; the install test builds host consumers (docs/arm.md)'; exit 77")
  set_tests_properties(capi/install PROPERTIES SKIP_RETURN_CODE 77)
elseif(NOT RECUR_SANITIZE)
  add_test(NAME capi/install COMMAND bash ${RECUR_CAPI_DIR}/install_test.sh ${PROJECT_BINARY_DIR}
           ${PROJECT_SOURCE_DIR} ${RECUR_CAPI_MODEL} ${CMAKE_GENERATOR})
  set_tests_properties(capi/install PROPERTIES FIXTURES_REQUIRED capi_model TIMEOUT 300)
endif()
