/*
 * CRC32C for the store's records.  Owns the lookup tables (built once, on
 * first use, under pthread_once) and the choice between the SSE4.2
 * instruction and the table path.  The tables are slicing-by-8: table[0] is
 * the classic byte table, table[k][b] is the CRC of byte b followed by k zero
 * bytes, so eight input bytes are folded per step.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;
static int crc32c_use_hardware = -1; /* -1 unknown, 0 table, 1 sse4.2 */
static int crc32c_use_clmul; /* 1: sse4.2 and pclmul, for crc32c_shift's products */
static int crc32c_forced_table;

static void crc32c_build_tables(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
        crc32c_table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = crc32c_table[0][b];
        for (int t = 1; t < 8; t++) {
            c = crc32c_table[0][c & 0xff] ^ (c >> 8);
            crc32c_table[t][b] = c;
        }
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    crc32c_use_hardware = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    crc32c_use_clmul = crc32c_use_hardware && __builtin_cpu_supports("pclmul");
#else
    crc32c_use_hardware = 0;
#endif
}

/* Works on the inverted register (crc ^ ~0), as both paths do. */
static uint32_t crc32c_table_update(uint32_t reg, const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        reg = crc32c_table[0][(reg ^ *p++) & 0xff] ^ (reg >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        uint32_t lo = (uint32_t)word ^ reg;
        uint32_t hi = (uint32_t)(word >> 32);
        reg = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
              crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
              crc32c_table[3][hi & 0xff] ^ crc32c_table[2][(hi >> 8) & 0xff] ^
              crc32c_table[1][(hi >> 16) & 0xff] ^ crc32c_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        reg = crc32c_table[0][(reg ^ *p++) & 0xff] ^ (reg >> 8);
    return reg;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware_update(uint32_t reg, const unsigned char *p, size_t len)
{
    uint64_t r = reg;
    while (len && ((uintptr_t)p & 7)) {
        r = __builtin_ia32_crc32qi((uint32_t)r, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        r = __builtin_ia32_crc32di(r, word);
        p += 8;
        len -= 8;
    }
    while (len--)
        r = __builtin_ia32_crc32qi((uint32_t)r, *p++);
    return (uint32_t)r;
}
#endif

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc32c_table_once, crc32c_build_tables);
    if (len == 0)
        return crc;
    uint32_t reg = ~crc;
#if defined(__x86_64__)
    if (crc32c_use_hardware == 1 && !crc32c_forced_table)
        return ~crc32c_hardware_update(reg, data, len);
#endif
    return ~crc32c_table_update(reg, data, len);
}

void crc32c_force_table(int force)
{
    crc32c_forced_table = force;
}

/* a * b modulo the polynomial, both reflected (bit 31 is x^0), as zlib's
 * crc32_combine does it; without branches on the bits (the look-ahead at
 * open multiplies millions of times). */
static uint32_t crc32c_multmodp(uint32_t a, uint32_t b)
{
    uint32_t p = 0;
    for (int k = 31; k >= 0; k--) {
        p ^= b & (0u - ((a >> k) & 1u));
        b = (b >> 1) ^ (CRC32C_POLY_REFLECTED & (0u - (b & 1u)));
    }
    return p;
}

#if defined(__x86_64__)
/* The same product with one carry-less multiply: its 63 bits, shifted up
 * one, are the product with bit 63 as x^0; the upper half is already
 * below x^32, and the crc32 instruction reduces the lower (x^32..x^63):
 * crc32(0, d) is d * x^32 mod P. */
__attribute__((target("sse4.2,pclmul")))
static uint32_t crc32c_multmodp_clmul(uint32_t a, uint32_t b)
{
    __m128i p = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)a), _mm_cvtsi32_si128((int)b), 0);
    uint64_t v = (uint64_t)_mm_cvtsi128_si64(p) << 1;
    return (uint32_t)(v >> 32) ^ _mm_crc32_u32(0, (uint32_t)v);
}
#endif

/* crc32c_multmodp, with the carry-less multiply when the CPU has it (and
 * the table path is not forced). */
static uint32_t crc32c_mul(uint32_t a, uint32_t b)
{
#if defined(__x86_64__)
    if (crc32c_use_clmul && !crc32c_forced_table)
        return crc32c_multmodp_clmul(a, b);
#endif
    return crc32c_multmodp(a, b);
}

/* x^(8 * n) mod P for any n, by squaring. */
static uint32_t crc32c_x8nmodp(uint64_t n)
{
    uint32_t x2n = 1u << 30; /* x^1 */
    for (int k = 0; k < 3; k++)
        x2n = crc32c_multmodp(x2n, x2n); /* x^8 */
    uint32_t shift = 1u << 31; /* x^0 */
    for (; n; n >>= 1) {
        if (n & 1)
            shift = crc32c_multmodp(x2n, shift);
        x2n = crc32c_multmodp(x2n, x2n);
    }
    return shift;
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    return crc32c_multmodp(crc32c_x8nmodp(len_b), crc_a) ^ crc_b;
}

/* x^(8 * n) mod P for n below 2^27 in two lookups: n = hi * 2^13 + lo. */
#define CRC32C_SHIFT_LO_BITS 13
#define CRC32C_SHIFT_HI_BITS 14
static uint32_t crc32c_shift_lo[1u << CRC32C_SHIFT_LO_BITS];
static uint32_t crc32c_shift_hi[1u << CRC32C_SHIFT_HI_BITS];
static pthread_once_t crc32c_shift_once = PTHREAD_ONCE_INIT;

static void crc32c_build_shift_tables(void)
{
    uint32_t x8 = crc32c_x8nmodp(1), step = crc32c_x8nmodp(1u << CRC32C_SHIFT_LO_BITS);
    crc32c_shift_lo[0] = crc32c_shift_hi[0] = 1u << 31;
    for (size_t i = 1; i < sizeof crc32c_shift_lo / sizeof crc32c_shift_lo[0]; i++)
        crc32c_shift_lo[i] = crc32c_multmodp(crc32c_shift_lo[i - 1], x8);
    for (size_t i = 1; i < sizeof crc32c_shift_hi / sizeof crc32c_shift_hi[0]; i++)
        crc32c_shift_hi[i] = crc32c_multmodp(crc32c_shift_hi[i - 1], step);
}

uint32_t crc32c_shift(uint32_t crc_a, uint64_t len_b)
{
    if (len_b >> (CRC32C_SHIFT_LO_BITS + CRC32C_SHIFT_HI_BITS))
        return crc32c_combine(crc_a, 0, len_b);
    pthread_once(&crc32c_table_once, crc32c_build_tables);
    pthread_once(&crc32c_shift_once, crc32c_build_shift_tables);
    uint32_t x8n = crc32c_mul(crc32c_shift_lo[len_b & ((1u << CRC32C_SHIFT_LO_BITS) - 1)],
                              crc32c_shift_hi[len_b >> CRC32C_SHIFT_LO_BITS]);
    return crc32c_mul(x8n, crc_a);
}
