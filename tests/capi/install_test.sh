#!/usr/bin/env bash
# install_test.sh BUILD_DIR SOURCE_DIR MODEL.recur GENERATOR
# Installs the recur component of BUILD_DIR to a temporary prefix, then builds against it:
# examples/c_embed (plain C, find_package -> recur::recur), tests/capi/cpp_consumer (C++, the
# shared and the static library) and a pkg-config build of the C example; runs all of them on
# MODEL, and checks what librecur.so exports. Prints the stripped size of librecur.so.
set -euo pipefail
build=$1 src=$2 model=$3 generator=${4:-Ninja}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" --component recur > "$tmp/install.log"
for f in include/recur/recur.h include/recur/recur.hpp include/recur/runtime/recur.h \
         include/recur/runtime/recur.hpp include/recur/formats/status.h; do
  [[ -f $prefix/$f ]] || { echo "missing $f"; exit 1; }
done
so=$(find "$prefix" -name 'librecur.so' | head -1)
[[ -n $so ]] || { echo "librecur.so not installed"; exit 1; }
find "$prefix" -name 'librecur.a' | grep -q . || { echo "librecur.a not installed"; exit 1; }
pc=$(find "$prefix" -name recur.pc | head -1)
[[ -n $pc ]] || { echo "recur.pc not installed"; exit 1; }
find "$prefix" -name recurConfig.cmake | grep -q . || { echo "recurConfig.cmake not installed"; exit 1; }

# Exports: the C API and the C++ API classes, nothing of Highway, oneTBB or the internals.
exports=$(nm -D --defined-only -C "$so" | awk '{ $1 = ""; $2 = ""; print }')
for sym in recur_model_load recur_session_state_load recur_step_batch recur_last_error \
           'recur::Session::StepToken' 'recur::Model::Load'; do
  grep -q -- "$sym" <<< "$exports" || { echo "librecur.so does not export $sym"; exit 1; }
done
if grep -E 'hwy::|tbb::|recur::ops::|recur::Block|recur::RecurFile|recur::Tokenizer' <<< "$exports"; then
  echo "librecur.so exports internal symbols (above)"; exit 1
fi
echo "librecur.so exports $(wc -l <<< "$exports") symbols"

cmake -S "$src/examples/c_embed" -B "$tmp/c" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/c.log"
cmake --build "$tmp/c" > "$tmp/c-build.log"
"$tmp/c/c_embed" "$model" "Hi" 4

cmake -S "$src/tests/capi/cpp_consumer" -B "$tmp/cpp" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/cpp.log"
cmake --build "$tmp/cpp" > "$tmp/cpp-build.log"
"$tmp/cpp/cpp_consumer" "$model"
"$tmp/cpp/cpp_consumer_static" "$model"

if command -v pkg-config > /dev/null; then
  export PKG_CONFIG_PATH=$(dirname "$pc")
  cc -std=c99 -Wall -Werror -pedantic "$src/examples/c_embed/c_embed.c" -o "$tmp/c_embed_pc" \
    $(pkg-config --cflags --libs recur)
  LD_LIBRARY_PATH=$(dirname "$so") "$tmp/c_embed_pc" "$model" "Hi" 2 > /dev/null
  echo "pkg-config build: ok"
fi

cp "$(readlink -f "$so")" "$tmp/stripped.so"
strip --strip-unneeded "$tmp/stripped.so"
echo "librecur.so: $(stat -c %s "$(readlink -f "$so")") bytes, stripped $(stat -c %s "$tmp/stripped.so") bytes"
echo "install test: ok"
