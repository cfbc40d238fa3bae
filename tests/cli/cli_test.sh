#!/usr/bin/env bash
# End-to-end checks of the recur CLI: convert -> inspect -> dump, and clean errors on bad input.
# Usage: cli_test.sh BUILD_DIR
set -uo pipefail
build=$1
recur=$build/recur
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A cross build (docs/arm.md) runs the programs under the emulator CMake names (qemu-aarch64 ...).
if [ -n "${RECUR_EMULATOR:-}" ]; then
  mkdir "$work/bin"
  for prog in recur make_demo_model; do
    printf '#!/bin/sh\nexec %s %q "$@"\n' "$RECUR_EMULATOR" "$build/$prog" >"$work/bin/$prog"
    chmod +x "$work/bin/$prog"
  done
  build=$work/bin recur=$work/bin/recur
fi
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

# synth + bench: a tiny preset, every JSON key the benchmark promises, clear errors.
check "synth --list" "$recur" synth --list
grep -q "mamba-130m" "$work/out" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: synth --list names mamba-130m"; }
check "synth mamba2-tiny q8_0" "$recur" synth --preset mamba2-tiny --dtype q8_0 -q -o "$work/syn.recur"
check "bench --json" "$recur" bench "$work/syn.recur" --prompt-tokens 32 --gen-tokens 8 --repeats 2 --threads 1 --json
for key in prefill_tokens_per_s decode_tokens_per_s weight_bytes read_bandwidth_gbps decode_bandwidth_ratio \
           peak_gflops prefill_flops_ratio state_bytes peak_rss_bytes; do
  grep -q "\"$key\": [0-9]" "$work/out" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: bench --json has $key"; cat "$work/out"; }
done
check_fails_with "synth unknown preset" "mamba-130m" "$recur" synth --preset nope -o "$work/x.recur"
check_fails_with "bench missing file" "no-such.recur" "$recur" bench "$work/no-such.recur"
check "generate bundled model" "$recur" generate "$(dirname "$0")/../../examples/models/kjv-mamba2.recur" --prompt "And God said" -n 40 --seed 1 --threads 1
grep -q "tokens/s" "$work/out" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: generate prints tokens/s"; }

# HiPPO (docs/hippo.md): build memories, export their matrices with dump, stream frames.
check "hippo legt" "$recur" hippo --measure legt --n 8 --theta 1 --dt 0.01 --method zoh -o "$work/legt.recur"
check "inspect hippo" "$recur" inspect "$work/legt.recur"
grep -q "measure=legt n=8" "$work/out" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: inspect describes the hippo layer"; }
check "dump hippo.A" "$recur" dump "$work/legt.recur" --tensor hippo.A -o "$work/hA.npy"
head -c 128 "$work/hA.npy" | grep -qa "'descr': '<f8'" && head -c 128 "$work/hA.npy" | grep -qa "'shape': (8, 8)" &&
  [ "$(stat -c %s "$work/hA.npy")" -eq $((128 + 8 * 8 * 8)) ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: hippo.A npy (f64 [8, 8])"; }
check "dump hippo.B" "$recur" dump "$work/legt.recur" --tensor hippo.B -o "$work/hB.npy"
check "hippo f32 matrices" "$recur" hippo --measure fourier --n 6 --dt 0.1 --method bilinear --dtype f32 -o "$work/fou.recur"
check "dump hippo.A f32" "$recur" dump "$work/fou.recur" --tensor hippo.A -o "$work/hA32.npy"
[ "$(stat -c %s "$work/hA32.npy")" -eq $((128 + 6 * 6 * 4)) ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: f32 hippo.A npy size"; }
awk 'BEGIN { for (i = 0; i < 300; i++) printf "%.6f\n", sin(i / 20.0) }' >"$work/sig.csv"
check "stream legt" "$recur" stream "$work/legt.recur" --input "$work/sig.csv" --output "$work/coef.csv"
grep -q "state .* bytes, constant" "$work/out" && [ "$(wc -l <"$work/coef.csv")" -eq 300 ] &&
  [ "$(tail -1 "$work/coef.csv" | tr ',' '\n' | wc -l)" -eq 8 ] && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: stream writes 300 lines of 8 coefficients and reports the state"; }
# A LegS memory with a reconstruction head gives back a constant input exactly.
check "hippo legs --recon" "$recur" hippo --measure legs --n 8 --recon 4 -o "$work/legs.recur"
awk 'BEGIN { for (i = 0; i < 50; i++) print "2.5" }' | "$recur" stream "$work/legs.recur" --input - >"$work/rec.csv" 2>/dev/null
tail -1 "$work/rec.csv" | awk -F, '{ ok = NF == 4; for (i = 1; i <= NF; i++) if ($i < 2.4999 || $i > 2.5001) ok = 0; exit !ok }' &&
  passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: LegS reconstructs a constant"; cat "$work/rec.csv" | tail -2; }
check_fails_with "legs exact" "matrix exponential" "$recur" hippo --measure legs --n 8 --method zoh -o "$work/x.recur"
check_fails_with "stream frame width" "takes frames of 1" sh -c "echo 1,2 | '$recur' stream '$work/legt.recur'"
check_fails_with "stream bad number" "not a number" sh -c "echo abc | '$recur' stream '$work/legt.recur'"
check_fails_with "stream token model" "takes tokens" "$recur" stream "$work/m-f32.recur" --input "$work/sig.csv"

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
