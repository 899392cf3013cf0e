/*
 * tree_mem: the tree's heap bytes per znode beyond its path and data
 * (issue 18's memory target), counted, not timed, so load does not change it.
 *
 *   build/bench/tree_mem N [flat|two] [--snapshot]
 *
 * Builds a tree of N znodes of 100 bytes through tree_apply, with the txns a
 * server applies (CREATE2, as prep builds them: world:anyone ALL, parent
 * cversion -1, one zxid each): flat puts them all under /pop
 * (/pop/n0000000, ...), two under 1000 parents (/pop/p000/..., child i under
 * parent i % 1000).  It prints the heap in use (mallinfo2: uordblks +
 * hblkhd) the N znodes added, per znode, less their path and data (what
 * tree_data_bytes counts), and the tree's digest, which must not change with
 * the layout.  --snapshot also prints the snapshot's length and hash, which
 * must not change either.  The layout of struct tree_node goes first.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "htable.h"
#include "jute.h"
#include "tree.h"
#include "tree_internal.h"

#define VALUE_BYTES 100
#define PARENTS 1000

static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t zxid;

static void create(struct tree *t, const char *path, const uint8_t *value, int32_t len)
{
    static struct zn_acl world_all = {ZN_PERM_ALL, {"world", "anyone"}};
    struct txn txn;
    memset(&txn, 0, sizeof(txn));
    zxid++;
    txn.hdr = (struct txn_header){7, 1, zxid, 1700000000000 + zxid, ZN_OP_CREATE2};
    txn.op.type = ZN_OP_CREATE2;
    txn.op.path = (char *)path;
    txn.op.data = (struct jute_buf){value, len};
    txn.op.acl = (struct zn_acl_vec){1, &world_all};
    txn.op.parent_cversion = -1;
    txn.op.ttl_ms = -1;
    int rc = tree_apply(t, &txn, NULL, NULL, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "tree_mem: create %s failed: %d\n", path, rc);
        exit(1);
    }
}

static void print_layout(void)
{
    printf("struct tree_node: sizeof %zu, path (or owner) at offset %zu\n", sizeof(struct tree_node),
           offsetof(struct tree_node, tail));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tree_mem N [flat|two] [--snapshot]\n");
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10);
    bool two = argc > 2 && strcmp(argv[2], "two") == 0;
    bool snapshot = argc > 3 && strcmp(argv[3], "--snapshot") == 0;
    if (n == 0 || (argc > 2 && !two && strcmp(argv[2], "flat") != 0)) {
        fprintf(stderr, "tree_mem: N must be > 0, shape flat or two\n");
        return 2;
    }
    print_layout();
    uint8_t value[VALUE_BYTES];
    for (size_t i = 0; i < sizeof(value); i++)
        value[i] = (uint8_t)('a' + i % 26);

    struct tree *t = tree_new();
    if (t == NULL)
        return 1;
    char path[64];
    create(t, "/pop", NULL, -1);
    if (two) {
        for (int p = 0; p < PARENTS; p++) {
            snprintf(path, sizeof(path), "/pop/p%03d", p);
            create(t, path, NULL, -1);
        }
    }
    size_t bytes0 = tree_data_bytes(t), heap0 = heap_in_use();
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        if (two)
            snprintf(path, sizeof(path), "/pop/p%03zu/n%07zu", i % PARENTS, i);
        else
            snprintf(path, sizeof(path), "/pop/n%07zu", i);
        create(t, path, value, VALUE_BYTES);
    }
    double secs = now_s() - t0;
    size_t heap = heap_in_use() - heap0, bytes = tree_data_bytes(t) - bytes0;
    printf("%s N=%zu: heap %zu B, path+data %zu B, beyond path+data %.1f B per znode (apply %.1f s)\n",
           two ? "two-level" : "flat", n, heap, bytes, ((double)heap - (double)bytes) / (double)n, secs);
    printf("digest %016llx, tree_check %d\n", (unsigned long long)tree_digest(t), tree_check(t));
    if (snapshot) {
        struct jute_writer w;
        jute_writer_init(&w);
        if (tree_serialize(t, &w) != 0)
            return 1;
        printf("snapshot %zu B, hash %016llx\n", w.len, (unsigned long long)zn_hash(w.data, w.len));
        jute_writer_free(&w);
    }
    tree_free(t);
    return 0;
}
