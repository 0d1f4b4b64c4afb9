/*
 * Error codes, their texts and names, and the version functions
 * (async/error.h, async/common.h, async/version.h).
 */
#include "test_util.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

struct code_info {
  int code;
  const char *name;
};

/* Every code of enum async_error, with the name the header spells. */
static const struct code_info k_codes[] = {
    {ASYNC_OK, "ASYNC_OK"},
    {ASYNC_EINVAL, "ASYNC_EINVAL"},
    {ASYNC_ENOMEM, "ASYNC_ENOMEM"},
    {ASYNC_EBUSY, "ASYNC_EBUSY"},
    {ASYNC_ECLOSED, "ASYNC_ECLOSED"},
    {ASYNC_ECANCELED, "ASYNC_ECANCELED"},
    {ASYNC_ETIMEDOUT, "ASYNC_ETIMEDOUT"},
    {ASYNC_ESTATE, "ASYNC_ESTATE"},
    {ASYNC_EBADF, "ASYNC_EBADF"},
    {ASYNC_EMFILE, "ASYNC_EMFILE"},
    {ASYNC_EIO, "ASYNC_EIO"},
    {ASYNC_ERANGE, "ASYNC_ERANGE"},
    {ASYNC_EINTERNAL, "ASYNC_EINTERNAL"},
    {ASYNC_ENOTFOUND, "ASYNC_ENOTFOUND"},
    {ASYNC_ENODATA, "ASYNC_ENODATA"},
    {ASYNC_EREFUSED, "ASYNC_EREFUSED"},
    {ASYNC_ESERVFAIL, "ASYNC_ESERVFAIL"},
    {ASYNC_EBADNAME, "ASYNC_EBADNAME"},
    {ASYNC_ECONNREFUSED, "ASYNC_ECONNREFUSED"},
    {ASYNC_ECONNRESET, "ASYNC_ECONNRESET"},
    {ASYNC_EPIPE, "ASYNC_EPIPE"},
    {ASYNC_ENOBUFS, "ASYNC_ENOBUFS"},
    {ASYNC_EHOSTUNREACH, "ASYNC_EHOSTUNREACH"},
    {ASYNC_ENETUNREACH, "ASYNC_ENETUNREACH"},
    {ASYNC_EADDRINUSE, "ASYNC_EADDRINUSE"},
    {ASYNC_EADDRNOTAVAIL, "ASYNC_EADDRNOTAVAIL"},
    {ASYNC_EEOF, "ASYNC_EEOF"},
    {ASYNC_EMSGSIZE, "ASYNC_EMSGSIZE"},
    {ASYNC_EACCES, "ASYNC_EACCES"},
    {ASYNC_EWRONGTHREAD, "ASYNC_EWRONGTHREAD"},
    {ASYNC_ENOTSUP, "ASYNC_ENOTSUP"},
    {ASYNC_ENOENT, "ASYNC_ENOENT"},
    {ASYNC_ENOEXEC, "ASYNC_ENOEXEC"},
    {ASYNC_EPROTO, "ASYNC_EPROTO"},
    {ASYNC_ETLS, "ASYNC_ETLS"},
    {ASYNC_ECERT, "ASYNC_ECERT"},
    {ASYNC_ETRUNCATED, "ASYNC_ETRUNCATED"},
};
#define N_CODES (sizeof k_codes / sizeof k_codes[0])

/* The values are part of the ABI: never renumbered. */
static void test_code_values_fixed(void **state) {
  (void)state;
  assert_int_equal(ASYNC_OK, 0);
  assert_int_equal(ASYNC_EINVAL, -1);
  assert_int_equal(ASYNC_ENOMEM, -2);
  assert_int_equal(ASYNC_EBUSY, -3);
  assert_int_equal(ASYNC_ECLOSED, -4);
  assert_int_equal(ASYNC_ECANCELED, -5);
  assert_int_equal(ASYNC_ETIMEDOUT, -6);
  assert_int_equal(ASYNC_ESTATE, -7);
  assert_int_equal(ASYNC_EBADF, -8);
  assert_int_equal(ASYNC_EMFILE, -9);
  assert_int_equal(ASYNC_EIO, -10);
  assert_int_equal(ASYNC_ERANGE, -11);
  assert_int_equal(ASYNC_EINTERNAL, -12);
  assert_int_equal(ASYNC_ENOTFOUND, -13);
  assert_int_equal(ASYNC_ENODATA, -14);
  assert_int_equal(ASYNC_EREFUSED, -15);
  assert_int_equal(ASYNC_ESERVFAIL, -16);
  assert_int_equal(ASYNC_EBADNAME, -17);
  assert_int_equal(ASYNC_ECONNREFUSED, -18);
  assert_int_equal(ASYNC_ECONNRESET, -19);
  assert_int_equal(ASYNC_EPIPE, -20);
  assert_int_equal(ASYNC_ENOBUFS, -21);
  assert_int_equal(ASYNC_EHOSTUNREACH, -22);
  assert_int_equal(ASYNC_ENETUNREACH, -23);
  assert_int_equal(ASYNC_EADDRINUSE, -24);
  assert_int_equal(ASYNC_EADDRNOTAVAIL, -25);
  assert_int_equal(ASYNC_EEOF, -26);
  assert_int_equal(ASYNC_EMSGSIZE, -27);
  assert_int_equal(ASYNC_EACCES, -28);
  assert_int_equal(ASYNC_EWRONGTHREAD, -29);
  assert_int_equal(ASYNC_ENOTSUP, -30);
  assert_int_equal(ASYNC_ENOENT, -31);
  assert_int_equal(ASYNC_ENOEXEC, -32);
  assert_int_equal(ASYNC_EPROTO, -33);
  assert_int_equal(ASYNC_ETLS, -34);
  assert_int_equal(ASYNC_ECERT, -35);
  assert_int_equal(ASYNC_ETRUNCATED, -36);
}

static void test_strerror_distinct_known(void **state) {
  (void)state;
  const char *unknown = async_strerror(INT_MIN);
  assert_non_null(unknown);
  assert_string_equal(unknown, "unknown error");
  for (size_t i = 0; i < N_CODES; i++) {
    const char *s = async_strerror(k_codes[i].code);
    assert_non_null(s);
    assert_true(strlen(s) > 0);
    assert_string_not_equal(s, "unknown error");
    /* Stable: the same static text on every call. */
    assert_string_equal(s, async_strerror(k_codes[i].code));
    for (size_t j = 0; j < i; j++) {
      const char *t = async_strerror(k_codes[j].code);
      if (strcmp(s, t) == 0) {
        print_error("codes %d and %d share the text \"%s\"\n", k_codes[i].code,
                    k_codes[j].code, s);
        fail();
      }
    }
  }
}

static void test_err_name(void **state) {
  (void)state;
  for (size_t i = 0; i < N_CODES; i++) {
    const char *n = async_err_name(k_codes[i].code);
    assert_non_null(n);
    assert_string_equal(n, k_codes[i].name);
  }
}

static void test_unknown_codes(void **state) {
  (void)state;
  /* The code after the last one defined is unknown until it is added. */
  const int unknown[] = {
      k_codes[N_CODES - 1].code - 1, -100, -1000, INT_MIN, INT_MIN + 1, 1, 2, 12, 100, INT_MAX, ASYNC_ERROR_FORCE32,
  };
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *s = async_strerror(unknown[i]);
    const char *n = async_err_name(unknown[i]);
    assert_non_null(s);
    assert_non_null(n);
    assert_string_equal(s, "unknown error");
    assert_string_equal(n, "ASYNC_UNKNOWN");
  }
}

static void test_version(void **state) {
  (void)state;
  uint32_t v = async_version();
  assert_int_equal(v, (uint32_t)ASYNC_VERSION_HEX);
  assert_int_equal((v >> 16) & 0xffu, ASYNC_VERSION_MAJOR);
  assert_int_equal((v >> 8) & 0xffu, ASYNC_VERSION_MINOR);
  assert_int_equal(v & 0xffu, ASYNC_VERSION_PATCH);

  const char *s = async_version_string();
  assert_non_null(s);
  assert_string_equal(s, ASYNC_VERSION_STRING);
  char buf[64];
  snprintf(buf, sizeof buf, "%d.%d.%d", ASYNC_VERSION_MAJOR, ASYNC_VERSION_MINOR,
           ASYNC_VERSION_PATCH);
  assert_string_equal(s, buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_code_values_fixed),
      cmocka_unit_test(test_strerror_distinct_known),
      cmocka_unit_test(test_err_name),
      cmocka_unit_test(test_unknown_codes),
      cmocka_unit_test(test_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
