#include <async.h>

#include "util/error_table.hpp"

extern "C" {

ASYNC_API const char *async_strerror(int code) { return async::util::error_message(code); }

ASYNC_API const char *async_err_name(int code) { return async::util::error_name(code); }
}
