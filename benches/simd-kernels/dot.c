/* dot: dot product of two i16 vectors of 64 Ki elements, n passes, exact in i32.
 * Built twice: with -msimd128 (wasm_simd128.h: i32x4.dot_i16x8_s, 4 accumulators) as
 * dot_simd, and without as dot_scalar (the plain loop); both return the same checksum. */
#include "kernel.h"
#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

#define LEN (64 * 1024)
static short a[LEN] __attribute__((aligned(16)));
static short b[LEN] __attribute__((aligned(16)));

static i32 dot(const short *x, const short *y) {
#ifdef __wasm_simd128__
  v128_t s0 = wasm_i32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
  for (int i = 0; i < LEN; i += 32) {
    s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(wasm_v128_load(x + i), wasm_v128_load(y + i)));
    s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(wasm_v128_load(x + i + 8), wasm_v128_load(y + i + 8)));
    s2 = wasm_i32x4_add(s2, wasm_i32x4_dot_i16x8(wasm_v128_load(x + i + 16), wasm_v128_load(y + i + 16)));
    s3 = wasm_i32x4_add(s3, wasm_i32x4_dot_i16x8(wasm_v128_load(x + i + 24), wasm_v128_load(y + i + 24)));
  }
  v128_t s = wasm_i32x4_add(wasm_i32x4_add(s0, s1), wasm_i32x4_add(s2, s3));
  return wasm_i32x4_extract_lane(s, 0) + wasm_i32x4_extract_lane(s, 1) +
         wasm_i32x4_extract_lane(s, 2) + wasm_i32x4_extract_lane(s, 3);
#else
  i32 s = 0;
  for (int i = 0; i < LEN; i++) s += (i32)x[i] * (i32)y[i];
  return s;
#endif
}

int run(int n) {
  u32 r = 2463534242u;
  for (int i = 0; i < LEN; i++) {
    r ^= r << 13; r ^= r >> 17; r ^= r << 5;
    a[i] = (short)r;
    b[i] = (short)(r >> 16);
  }
  u32 check = 0;
  for (int k = 0; k < n; k++) {
    /* Rotate which element pairs meet so no pass is a repeat of the last. */
    check = check * 31 + (u32)dot(a + (k & 7) * 8, b) ;
  }
  return (int)check;
}
