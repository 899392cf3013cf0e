/*
 * replay_main: runs a fuzz target's LLVMFuzzerTestOneInput over saved inputs
 * without libFuzzer, so the corpus is a regression test in every build (gcc
 * included).  Arguments are files or directories (every regular file in
 * them, in name order).  Exits non-zero when no input was found or none
 * decoded (either would make the test pass vacuously) or a file cannot be
 * read; a
 * crashing input aborts the process, after its path was printed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Counted by the target: packets that decoded and round-tripped. */
extern size_t jute_fuzz_packets_decoded;

/* Corpus files are small seeds; anything larger is a mistake in the corpus. */
#define REPLAY_MAX_FILE_BYTES (4 * 1024 * 1024)

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *data = malloc(REPLAY_MAX_FILE_BYTES);
    if (data == NULL) {
        fclose(f);
        return -1;
    }
    size_t n = fread(data, 1, REPLAY_MAX_FILE_BYTES, f);
    bool too_big = n == REPLAY_MAX_FILE_BYTES && fgetc(f) != EOF;
    int bad = ferror(f);
    fclose(f);
    if (bad || too_big) {
        fprintf(stderr, "replay: cannot read %s%s\n", path, too_big ? " (over the size limit)" : "");
        free(data);
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    /* A copy of exactly n bytes, so ASan catches any read past the input. */
    uint8_t *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    memcpy(exact, data, n);
    free(data);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int name_order(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    size_t replayed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) != 0)
                return 1;
            replayed++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, name_order);
        if (n < 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (replay_file(path) != 0)
                    return 1;
                replayed++;
            }
            free(names[j]);
        }
        free(names);
    }
    if (replayed == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("replay: %zu inputs, %zu packets decoded and round-tripped, no crash\n", replayed,
           jute_fuzz_packets_decoded);
    /* Seeds are valid streams: if none decodes, the harness has gone blind. */
    if (jute_fuzz_packets_decoded == 0) {
        fprintf(stderr, "replay: no packet decoded\n");
        return 1;
    }
    return 0;
}
