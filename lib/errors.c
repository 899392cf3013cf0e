/* Messages and names for the result codes of include/znode/errors.h. */
#include "znode/errors.h"

const char *zn_strerror(int code)
{
    switch (code) {
#define ZN_ERR_MSG(name, value, msg) \
    case value:                      \
        return msg;
        ZN_ERRNO_MAP(ZN_ERR_MSG)
#undef ZN_ERR_MSG
    }
    return "unknown error";
}

const char *zn_errname(int code)
{
    switch (code) {
#define ZN_ERR_NAME(name, value, msg) \
    case value:                       \
        return #name;
        ZN_ERRNO_MAP(ZN_ERR_NAME)
#undef ZN_ERR_NAME
    }
    return "UNKNOWN";
}
