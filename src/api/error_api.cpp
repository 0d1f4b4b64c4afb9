#include <async.h>

#include "util/error_table.hpp"

extern "C" {

ASYNC_API const char *async_strerror(int code) {
  const async::util::ErrorInfo *e = async::util::find_error(code);
  return e ? e->message : "unknown error";
}

ASYNC_API const char *async_err_name(int code) {
  const async::util::ErrorInfo *e = async::util::find_error(code);
  return e ? e->name : "ASYNC_UNKNOWN";
}
}
