/*
 * Assertions that stay on in release builds (programmer errors only; never
 * for what the world can do).  They print the expression, file and line.
 */
#ifndef ZNODE_ASSERT_H
#define ZNODE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define ZN_ASSERT(expr)                                                              \
    do {                                                                             \
        if (!(expr)) {                                                               \
            fprintf(stderr, "assertion failed: %s (%s:%d)\n", #expr, __FILE__, __LINE__); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#endif
