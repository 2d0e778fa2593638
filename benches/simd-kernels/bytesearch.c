/* bytesearch: counts and locates every occurrence of a byte in a 1 MiB buffer (memchr
 * style), n passes with a different byte each pass. Built twice: with -msimd128
 * (i8x16.eq, i8x16.bitmask, 64 bytes per iteration) as bytesearch_simd, and without as
 * bytesearch_scalar; both return the same checksum. */
#include "kernel.h"
#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

#define BUF (1024 * 1024)
static u8 buf[BUF] __attribute__((aligned(16)));

/* Folds every match position of `c` into a checksum. */
static u32 search(u8 c) {
  u32 h = 0;
#ifdef __wasm_simd128__
  v128_t needle = wasm_i8x16_splat((char)c);
  for (int i = 0; i < BUF; i += 64) {
    v128_t e0 = wasm_i8x16_eq(wasm_v128_load(buf + i), needle);
    v128_t e1 = wasm_i8x16_eq(wasm_v128_load(buf + i + 16), needle);
    v128_t e2 = wasm_i8x16_eq(wasm_v128_load(buf + i + 32), needle);
    v128_t e3 = wasm_i8x16_eq(wasm_v128_load(buf + i + 48), needle);
    if (!wasm_v128_any_true(wasm_v128_or(wasm_v128_or(e0, e1), wasm_v128_or(e2, e3)))) continue;
    u64 m = (u64)wasm_i8x16_bitmask(e0) | (u64)wasm_i8x16_bitmask(e1) << 16 |
            (u64)wasm_i8x16_bitmask(e2) << 32 | (u64)wasm_i8x16_bitmask(e3) << 48;
    while (m) {
      h = h * 31 + (u32)(i + __builtin_ctzll(m));
      m &= m - 1;
    }
  }
#else
  for (int i = 0; i < BUF; i++)
    if (buf[i] == c) h = h * 31 + (u32)i;
#endif
  return h;
}

int run(int n) {
  /* Mostly lowercase text-like bytes; the searched bytes are rare. */
  u32 r = 88172645u;
  for (int i = 0; i < BUF; i++) {
    r ^= r << 13; r ^= r >> 17; r ^= r << 5;
    buf[i] = (u8)('a' + (r >> 8) % 26);
    if ((r & 0xFFF) == 7) buf[i] = (u8)(r >> 24);
  }
  u32 check = 0;
  for (int k = 0; k < n; k++) check = check * 7 + search((u8)(0x80 + (k & 0x7F)));
  return (int)check;
}
