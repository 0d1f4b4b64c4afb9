#include <async.h>

extern "C" {

ASYNC_API uint32_t async_version(void) { return ASYNC_VERSION_HEX; }

ASYNC_API const char *async_version_string(void) { return ASYNC_VERSION_STRING; }
}
