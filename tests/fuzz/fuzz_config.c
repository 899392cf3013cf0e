/*
 * fuzz_config: the zoo.cfg parser under libFuzzer.  The input is the file's
 * text; it is written to an anonymous file (memfd) and loaded with
 * config_defaults then config_load, as znoded's main loads its configuration.  Any text must either load
 * or be refused with a message; never crash, over-read or leave the message
 * empty.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

size_t jute_fuzz_packets_decoded;

/* Largest zoo.cfg tried: real ones are a few hundred bytes. */
#define FUZZ_CONFIG_MAX_BYTES (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (size > FUZZ_CONFIG_MAX_BYTES)
        return 0;
    if (fd < 0) {
        zn_log_threshold = ZN_LOG_OFF; /* the parser's warnings are not findings */
        fd = memfd_create("zoo.cfg", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    struct config cfg;
    config_defaults(&cfg); /* as main does before loading */
    char err[512];
    err[0] = '\0';
    if (config_load(&cfg, path, err, sizeof err) == 0)
        jute_fuzz_packets_decoded++;
    else if (err[0] == '\0')
        abort(); /* a refusal must say why */
    return 0;
}
