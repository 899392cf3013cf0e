/*
 * dir_bench: the C reader of a mounted directory, for bench/compare's mount phase and
 * bench/mount-ls.sh.  Lists DIR N times with opendir/readdir/closedir, as `ls` does, and prints
 * one JSON line with the same latency fields as zn_bench (p50_us, p99_us, ...), so a listing
 * through the mount is set beside a getChildren through libznode, C against C.
 *
 *   dir_bench [-n N] [-w WARMUP] DIR
 *
 * Every listing must find the same number of entries as the first one ("." and ".." not
 * counted): a directory changing under the benchmark makes it fail rather than report.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The entries of dir, or -1 (errno set). */
static long list_once(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    int err = errno;
    closedir(d);
    errno = err;
    return err ? -1 : n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *sorted, long n, double p)
{
    long i = (long)(p * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)sorted[i] / 1000.0;
}

int main(int argc, char **argv)
{
    long n = 100, warmup = 0;
    int opt;
    while ((opt = getopt(argc, argv, "n:w:h")) != -1) {
        char *end = NULL;
        long v = optarg ? strtol(optarg, &end, 10) : 0;
        if (opt == 'h' || (optarg && (*end || v < 0 || (opt == 'n' && v == 0)))) {
            fprintf(stderr, "usage: dir_bench [-n N (>0)] [-w WARMUP] DIR\n");
            return 2;
        }
        if (opt == 'n')
            n = v;
        else if (opt == 'w')
            warmup = v;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: dir_bench [-n N (>0)] [-w WARMUP] DIR\n");
        return 2;
    }
    const char *dir = argv[optind];
    uint64_t *samples = calloc((size_t)n, sizeof *samples);
    if (!samples) {
        fprintf(stderr, "dir_bench: out of memory\n");
        return 1;
    }
    long entries = -2;
    for (long i = 0; i < warmup + n; i++) {
        uint64_t t = now_ns();
        long got = list_once(dir);
        uint64_t took = now_ns() - t;
        if (got < 0) {
            fprintf(stderr, "dir_bench: listing %s: %s\n", dir, strerror(errno));
            free(samples);
            return 1;
        }
        if (entries != -2 && got != entries) {
            fprintf(stderr, "dir_bench: %s listed %ld entries, then %ld: it changed\n", dir, entries, got);
            free(samples);
            return 1;
        }
        entries = got;
        if (i >= warmup)
            samples[i - warmup] = took;
    }
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += (double)samples[i];
    qsort(samples, (size_t)n, sizeof *samples, cmp_u64);
    printf("{\"workload\":\"readdir\",\"path\":\"%s\",\"n\":%ld,\"warmup\":%ld,\"entries\":%ld,"
           "\"mean_us\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"ok\":true}\n",
           dir, n, warmup, entries, sum / (double)n / 1000.0, pct_us(samples, n, 0.50),
           pct_us(samples, n, 0.99), (double)samples[n - 1] / 1000.0);
    free(samples);
    return 0;
}
