/* The unit-test harness: each TEST runs in its own forked process, so a crash,
 * a leak report or a hang in one test cannot hide the others. */
#ifndef CS_TEST_HARNESS_H
#define CS_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

typedef void (cs_test_fn) (void);

void cs_test_register (const char *name, cs_test_fn *fn);
void cs_test_fail (const char *file, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* A fresh private directory for this test (removed when the test ends). */
const char *cs_test_dir (void);
/* Writes text to a file in the test directory; returns the path (static buffer rotates). */
const char *cs_test_write (const char *name, const char *text);

#define TEST(name) \
    static void test_##name (void); \
    __attribute__ ((constructor)) static void register_##name (void) \
    { cs_test_register (#name, test_##name); } \
    static void test_##name (void)

#define CHECK(cond) do { if (!(cond)) \
    cs_test_fail (__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)

#define REQUIRE(cond) do { if (!(cond)) { \
    cs_test_fail (__FILE__, __LINE__, "REQUIRE(%s)", #cond); exit (1); } } while (0)

#define CHECK_INT(a, b) do { long long a_ = (long long) (a), b_ = (long long) (b); \
    if (a_ != b_) cs_test_fail (__FILE__, __LINE__, "%s == %lld, expected %s == %lld", \
                                #a, a_, #b, b_); } while (0)

#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
    if (!a_ || !b_ || strcmp (a_, b_) != 0) \
        cs_test_fail (__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)

/* The haystack contains the needle. */
#define CHECK_HAS(hay, needle) do { const char *h_ = (hay), *n_ = (needle); \
    if (!h_ || !strstr (h_, n_)) \
        cs_test_fail (__FILE__, __LINE__, "%s does not contain \"%s\": \"%s\"", #hay, n_, \
                      h_ ? h_ : "(null)"); } while (0)

#define CHECK_LACKS(hay, needle) do { const char *h_ = (hay), *n_ = (needle); \
    if (h_ && strstr (h_, n_)) \
        cs_test_fail (__FILE__, __LINE__, "%s contains \"%s\": \"%s\"", #hay, n_, h_); \
    } while (0)

#endif
