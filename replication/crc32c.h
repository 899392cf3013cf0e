/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of every
 * record the store writes.  Same parameters as iSCSI/ext4/LevelDB, so the
 * check value of "123456789" is 0xE3069283.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once, at run
 * time) and a slicing-by-8 table otherwise; both give identical results.
 */
#ifndef ZN_CRC32C_H
#define ZN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extends a running CRC32C with len bytes at data (borrowed for the call;
 * may be NULL when len is 0).  Start with crc = 0; the value returned is the
 * finished checksum of everything fed so far, and may be passed back in to
 * continue: crc32c_extend(crc32c_extend(0, a, n), b, m) == crc of a||b.
 */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len);

/* Checksum of one buffer: crc32c_extend(0, data, len). */
static inline uint32_t crc32c(const void *data, size_t len) { return crc32c_extend(0, data, len); }

/*
 * The checksum of a||b from crc_a (of a, as crc32c_extend gives it, from any
 * start) and crc_b = crc32c(b, len_b): two parts of one buffer checksummed on
 * two threads make the checksum of the whole.  O(log len_b).
 */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/*
 * The part of crc32c_combine that depends on crc_a:
 * crc32c_combine(crc_a, crc_b, len_b) == crc32c_shift(crc_a, len_b) ^ crc_b,
 * and it is linear: shift(a ^ b, n) == shift(a, n) ^ shift(b, n).  So with
 * P(y) = crc32c of a buffer's first y bytes, the checksum of bytes x..y is
 * P(y) ^ crc32c_shift(P(x), y - x), from the two prefixes alone.  Two table
 * lookups and two multiplications mod P for len_b below 2^27 (carry-less
 * multiplies when the CPU has pclmul; the tables, 96 KB, are built on first
 * use); O(log len_b) past that.
 */
uint32_t crc32c_shift(uint32_t crc_a, uint64_t len_b);

/* Forces the table implementation (1; and crc32c_shift's multiplications
 * without pclmul) or automatic choice (0): for tests that compare the paths.  Not thread-safe against concurrent crc32c calls. */
void crc32c_force_table(int force);

#endif
