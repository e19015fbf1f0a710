/* A minimal test harness: CHECK records a failure and goes on; main returns check_status(). */
#ifndef ATTNC_TEST_CHECK_H
#define ATTNC_TEST_CHECK_H
#include <math.h>
#include <stdio.h>

static int check_failures_;
static int check_count_;

#define CHECK(cond) do { check_count_++; if (!(cond)) { check_failures_++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_MSG(cond, ...) do { check_count_++; if (!(cond)) { check_failures_++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); check_count_++; \
    if (!(fabs(a_ - b_) <= (tol) * (1.0 + fabs(b_))) || isnan(a_) != isnan(b_)) { check_failures_++; \
    fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.17g, %s = %.17g\n", __FILE__, __LINE__, #a, a_, #b, b_); } } while (0)

static inline int check_status(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count_, check_failures_);
    return check_failures_ ? 1 : 0;
}
#endif
