/*
 * Header test: <async.h> alone must compile as strict C (built as C99 and
 * C11 with -Wall -Wextra -pedantic -Werror) and its version macros must
 * agree with the library it links against.
 */
#include <async.h>

int main(void) {
  /* One reference to the library, so the header's declarations are used. */
  return async_version() == (uint32_t)ASYNC_VERSION_HEX ? 0 : 1;
}
