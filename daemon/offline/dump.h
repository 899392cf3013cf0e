/*
 * dump: `znoded --dump`, a store's records printed offline (dump.c).
 */
#ifndef ZNODED_DUMP_H
#define ZNODED_DUMP_H

#include <stdint.h>

struct dump_options {
    const char *target;      /* a zoo.cfg (its dataLogDir is read) or a store's directory */
    uint64_t from_zxid;      /* records with from_zxid <= zxid <= to_zxid */
    uint64_t to_zxid;
    const char *path;        /* NULL, or log records touching this path or below it */
};

/* Parses --zxid's "FROM:TO" (either side may be empty; hex with 0x, or
 * decimal) into *o.  Returns 0, or -1 when it is not such a range. */
int dump_parse_range(const char *text, struct dump_options *o);

/*
 * Prints o->target's metadata, snapshots and log records, one line each,
 * checking every checksum.  Returns the exit status: 0 when every record
 * walked is intact, 1 when one or more are damaged (each named on stdout, and
 * the first in a last line on stderr), 2 when the target cannot be read
 * (the reason on stderr).
 */
int dump_run(const struct dump_options *o);

#endif
