/*
 * store_backup: the consistent copy of a running store and the backup
 * file's header (store_backup.h).
 */
#include "store_backup.h"

#include <string.h>

#include "crc32c.h"
#include "log.h"
#include "store_internal.h"
#include "znode/errors.h"

static const char backup_magic[8] = {'Z', 'N', 'B', 'A', 'C', 'K', 'U', 'P'};

static uint32_t header_crc(const unsigned char *h)
{
    return crc32c_extend(crc32c(h, 12), h + 16, STORE_BACKUP_HEADER_BYTES - 16);
}

void store_backup_header_encode(unsigned char out[STORE_BACKUP_HEADER_BYTES], uint64_t zxid,
                                uint64_t copy_bytes)
{
    memcpy(out, backup_magic, sizeof backup_magic);
    store_put_be32(out + 8, STORE_BACKUP_VERSION);
    store_put_be64(out + 16, zxid);
    store_put_be64(out + 24, copy_bytes);
    store_put_be32(out + 12, header_crc(out));
}

int store_backup_header_decode(const unsigned char in[STORE_BACKUP_HEADER_BYTES], uint64_t *zxid,
                               uint64_t *copy_bytes)
{
    if (memcmp(in, backup_magic, sizeof backup_magic) != 0 ||
        store_get_be32(in + 8) != STORE_BACKUP_VERSION || store_get_be32(in + 12) != header_crc(in))
        return ZN_CORRUPT;
    *zxid = store_get_be64(in + 16);
    *copy_bytes = store_get_be64(in + 24);
    return 0;
}

int store_copy(struct store *s, int fd)
{
    pthread_rwlock_rdlock(&s->resize_lock);
    int rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
    pthread_rwlock_unlock(&s->resize_lock);
    return rc ? store_error(rc, "copying the store") : 0;
}
