#!/bin/sh
# Builds each SIMD kernel twice for wasm32 (clang + wasm-ld, no libc): NAME_simd with
# -msimd128 (the wasm_simd128.h paths) and NAME_scalar without (the plain loops).
# Output: wasm/. Usage: sh benches/simd-kernels/build.sh (Debian clang 14 and lld).
set -eu
cd "$(dirname "$0")"
CC=${CC:-clang}
for k in dot bytesearch; do
  for v in simd scalar; do
    flags=""
    [ "$v" = simd ] && flags="-msimd128"
    $CC --target=wasm32 -O2 $flags -nostdlib -Wl,--no-entry -Wl,--export=run \
        -o "wasm/${k}_$v.wasm" "$k.c"
    echo "built ${k}_$v ($(wc -c < "wasm/${k}_$v.wasm") wasm bytes)"
  done
done
