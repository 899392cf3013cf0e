/*
 * The store's record formats: how log entries and snapshot headers are laid
 * out in LMDB values and how their checksums are computed and checked.  The
 * layouts are described in store_internal.h; this file is the only code that
 * knows them byte by byte.
 */
#include <string.h>

#include "assert.h"
#include "crc32c.h"
#include "store_internal.h"
#include "znode/errors.h"

uint32_t store_log_crc(uint64_t zxid, const void *payload, size_t len)
{
    unsigned char prefix[12];
    store_put_be64(prefix, zxid);
    store_put_be32(prefix + 8, (uint32_t)len);
    return crc32c_extend(crc32c(prefix, sizeof prefix), payload, len);
}

int store_log_decode(const MDB_val *key, const MDB_val *value, uint64_t *zxid,
                     const void **payload, size_t *len)
{
    if (key->mv_size != 8 || value->mv_size < STORE_LOG_HEADER_BYTES)
        return ZN_CORRUPT;
    const unsigned char *v = value->mv_data;
    uint32_t stored_crc = store_get_be32(v);
    uint32_t stored_len = store_get_be32(v + 4);
    if ((size_t)stored_len != value->mv_size - STORE_LOG_HEADER_BYTES)
        return ZN_CORRUPT;
    uint64_t z = store_get_be64(key->mv_data);
    if (store_log_crc(z, v + STORE_LOG_HEADER_BYTES, stored_len) != stored_crc)
        return ZN_CORRUPT;
    *zxid = z;
    *payload = v + STORE_LOG_HEADER_BYTES;
    *len = stored_len;
    return 0;
}

void store_snap_key(unsigned char key[STORE_SNAP_KEY_BYTES], uint64_t zxid, uint32_t chunk)
{
    store_put_be64(key, zxid);
    store_put_be32(key + 8, chunk);
}

void store_snap_header_encode(unsigned char out[STORE_SNAP_HEADER_BYTES], uint64_t zxid,
                              const void *blob, size_t len, uint32_t chunks)
{
    unsigned char zxid_be[8];
    store_put_be64(zxid_be, zxid);
    uint32_t blob_crc = crc32c_extend(crc32c(zxid_be, 8), blob, len);
    store_put_be32(out, STORE_SNAP_MAGIC);
    store_put_be32(out + 4, STORE_SNAP_VERSION);
    store_put_be64(out + 8, zxid);
    store_put_be64(out + 16, (uint64_t)len);
    store_put_be32(out + 24, chunks);
    store_put_be32(out + 28, blob_crc);
    store_put_be32(out + 32, 0); /* reserved */
    store_put_be32(out + 36, crc32c(out, 36));
}

int store_snap_header_decode(const MDB_val *value, uint64_t *zxid, uint64_t *blob_len,
                             uint32_t *chunks, uint32_t *blob_crc)
{
    if (value->mv_size != STORE_SNAP_HEADER_BYTES)
        return ZN_CORRUPT;
    const unsigned char *h = value->mv_data;
    if (store_get_be32(h + 36) != crc32c(h, 36) || store_get_be32(h) != STORE_SNAP_MAGIC ||
        store_get_be32(h + 4) != STORE_SNAP_VERSION)
        return ZN_CORRUPT;
    *zxid = store_get_be64(h + 8);
    *blob_len = store_get_be64(h + 16);
    *chunks = store_get_be32(h + 24);
    *blob_crc = store_get_be32(h + 28);
    /* The chunk count must match the length, or a reader could be led to
     * allocate or walk more than was written. */
    uint64_t expected = (*blob_len + ZN_STORE_SNAPSHOT_CHUNK_BYTES - 1) / ZN_STORE_SNAPSHOT_CHUNK_BYTES;
    if (*blob_len > ZN_STORE_SNAPSHOT_MAX_BYTES || *chunks != expected)
        return ZN_CORRUPT;
    return 0;
}
