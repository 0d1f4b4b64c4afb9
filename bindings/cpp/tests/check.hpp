// The C++ binding's tests: CHECK, expect_error and a runner, no framework.
#ifndef ASYNC_CPP_TEST_CHECK_HPP
#define ASYNC_CPP_TEST_CHECK_HPP

#include <async.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#define CHECK(expr)                                                                 \
  do {                                                                              \
    if (!(expr)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

// Runs expr and checks that it throws async::error with the code (name and message included).
#define CHECK_ERROR(want, expr)                                                                              \
  do {                                                                                                       \
    bool thrown_ = false;                                                                                    \
    try {                                                                                                    \
      expr;                                                                                                  \
    } catch (const async::error &e) {                                                                        \
      thrown_ = true;                                                                                        \
      if (e.value() != (want)) {                                                                             \
        std::fprintf(stderr, "%s:%d: %s threw %s, not %s\n", __FILE__, __LINE__, #expr, e.name(),            \
                     async_err_name(want));                                                                  \
        std::exit(1);                                                                                        \
      }                                                                                                      \
      CHECK(std::strcmp(e.name(), async_err_name(want)) == 0);                                               \
      CHECK(std::strstr(e.what(), async_strerror(want)) != nullptr);                                         \
      CHECK(e.code().category() == async::category());                                                       \
    }                                                                                                        \
    if (!thrown_) {                                                                                          \
      std::fprintf(stderr, "%s:%d: %s did not throw %s\n", __FILE__, __LINE__, #expr, async_err_name(want)); \
      std::exit(1);                                                                                          \
    }                                                                                                        \
  } while (0)

struct test_case {
  const char *name;
  void (*fn)();
};

template <std::size_t N>
int run_tests(const test_case (&tests)[N]) {
  for (const test_case &t : tests) {
    try {
      t.fn();
    } catch (const std::exception &e) {
      std::fprintf(stderr, "not ok - %s: uncaught %s\n", t.name, e.what());
      return 1;
    }
    std::printf("ok - %s\n", t.name);
  }
  return 0;
}

#endif
