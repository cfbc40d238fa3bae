#!/usr/bin/env bash
# End-to-end checks of the recur CLI: convert -> inspect -> dump, and clean errors on bad input.
# Usage: cli_test.sh BUILD_DIR
set -uo pipefail
build=$1
recur=$build/recur
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() {  # check NAME COMMAND...: the command must succeed.
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $name"; sed 's/^/  | /' "$work/out" | head -20; fi
}
check_fails_with() {  # check_fails_with NAME TEXT COMMAND...: exit 1, stderr mentions TEXT.
  local name=$1 text=$2; shift 2
  "$@" >"$work/out" 2>&1; local rc=$?
  if [ $rc -eq 1 ] && grep -qF -- "$text" "$work/out"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $name (exit $rc, wanted 1 and '$text')"; sed 's/^/  | /' "$work/out" | head -20; fi
}

check "make_demo_model" "$build/make_demo_model" -o "$work/demo"
for dtype in f32 f16 bf16 q8_0; do
  check "convert --dtype $dtype" "$recur" convert "$work/demo/spec.json" -o "$work/m-$dtype.recur" --dtype "$dtype"
  check "inspect $dtype" "$recur" inspect "$work/m-$dtype.recur"
done
grep -q "mamba1" "$work/out" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: inspect text names the block kind"; }
check "inspect --json" "$recur" inspect --json "$work/m-q8_0.recur"
grep -q '"q8_0"' "$work/out" && grep -q '"state_bytes": 19456' "$work/out" && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: inspect --json reports q8_0 bytes and the state size"; cat "$work/out"; }
check "dump --list" "$recur" dump "$work/m-f32.recur" --list
grep -q "layers.0.mixer.in_proj.weight" "$work/out" && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: dump --list lists tensors"; }
for dtype in f32 f16 bf16 q8_0; do
  check "dump --tensor ($dtype)" "$recur" dump "$work/m-$dtype.recur" --tensor layers.0.mixer.in_proj.weight -o "$work/t-$dtype.npy"
  # A .npy file: magic, then a header naming the dtype and the shape.
  head -c 128 "$work/t-$dtype.npy" | grep -qa "'shape': (256, 64)" && passed=$((passed + 1)) ||
    { failed=$((failed + 1)); echo "FAIL: npy header of $dtype"; }
done
size_f32=$(stat -c %s "$work/t-f32.npy")
[ "$size_f32" -eq $((128 + 256 * 64 * 4)) ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: npy size $size_f32"; }
# The f16 export stays f16 (half the bytes); bf16 and q8_0 are decoded to f32.
[ "$(stat -c %s "$work/t-f16.npy")" -eq $((128 + 256 * 64 * 2)) ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: f16 npy size"; }
[ "$(stat -c %s "$work/t-q8_0.npy")" -eq "$size_f32" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: q8_0 npy size"; }

# Errors: named, exit 1, never a crash.
check_fails_with "missing model" "no such file" "$recur" inspect "$work/absent.recur"
head -c 1000 "$work/m-f32.recur" >"$work/cut.recur"
check_fails_with "truncated model" "cut.recur" "$recur" inspect "$work/cut.recur"
check_fails_with "unknown tensor" "no tensor 'nope'" "$recur" dump "$work/m-f32.recur" --tensor nope -o "$work/x.npy"
sed 's/"d_state": 16/"d_state": 8/' "$work/demo/spec.json" >"$work/demo/bad-shape.json"
check_fails_with "mis-shaped tensor" "layers.0.mixer" "$recur" convert "$work/demo/bad-shape.json" -o "$work/x.recur"
sed 's/"d_inner"/"d_innr"/' "$work/demo/spec.json" >"$work/demo/typo.json"
check_fails_with "spec typo" "d_innr" "$recur" convert "$work/demo/typo.json" -o "$work/x.recur"
check_fails_with "bad source" "" "$recur" convert "$work/m-f32.recur" -o "$work/x.recur"
[ ! -e "$work/x.recur" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: a failed convert left an output file"; }
"$recur" bench >"$work/out" 2>&1; [ $? -eq 1 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: reserved subcommand"; }

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
