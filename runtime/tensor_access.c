/* Element access and dtype conversions for attnc_tensor views (see tensor_access.h).
 * Narrowing conversions go through one routine, round_to_format, that rounds a double to
 * a binary format given its precision, smallest normal exponent and largest finite
 * value; encoding the (then exactly representable) result into bits is separate. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "runtime/tensor_access.h"

int64_t tensor_count(const attnc_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim && i < ATTNC_MAX_DIMS; i++) {
        if (t->shape[i] < 0) return -1;
        if (t->shape[i] != 0 && n > INT64_MAX / t->shape[i]) return -1;
        n *= t->shape[i];
    }
    return n;
}

void tensor_strides(const attnc_tensor *t, int64_t strides[ATTNC_MAX_DIMS]) {
    int nd = t->ndim < 0 ? 0 : t->ndim > ATTNC_MAX_DIMS ? ATTNC_MAX_DIMS : t->ndim;
    bool given = false;
    for (int i = 0; i < nd; i++) given |= t->strides[i] != 0;
    int64_t s = 1;
    for (int i = ATTNC_MAX_DIMS - 1; i >= 0; i--) {
        if (i >= nd) { strides[i] = 0; continue; }
        strides[i] = given ? t->strides[i] : s;
        s *= t->shape[i] > 0 ? t->shape[i] : 1;
    }
}

int64_t tensor_offset(const attnc_tensor *t, const int64_t *idx) {
    int64_t st[ATTNC_MAX_DIMS];
    tensor_strides(t, st);
    int64_t off = 0;
    for (int i = 0; i < t->ndim && i < ATTNC_MAX_DIMS; i++) off += idx[i] * st[i];
    return off;
}

/* x rounded to nearest-even in a format with p significand bits (implicit bit included)
 * and smallest normal exponent emin; beyond max_finite it becomes inf, as IEEE rounding
 * does. Scaling by a power of two is exact, so rint sees the bits that must go. */
static double round_to_format(double x, int p, int emin, double max_finite) {
    if (!isfinite(x) || x == 0) return x;
    int e = ilogb(x);
    if (e < emin) e = emin;                  /* subnormal range: fixed spacing */
    double ulp = ldexp(1.0, e - p + 1);
    double r = rint(x / ulp) * ulp;          /* rint: nearest, ties to even (default mode) */
    if (fabs(r) > max_finite) return copysign(INFINITY, x);
    return r;
}

float attnc_double_to_f32(double v) {
    if (isnan(v)) return (float)v;
    return (float)round_to_format(v, 24, -126, FLT_MAX);   /* exact after rounding */
}

double attnc_f16_to_double(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0) v = ldexp((double)m, -24);                   /* zero and subnormals */
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp((double)(m | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

uint16_t attnc_double_to_f16(double v) {
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    if (isnan(v)) return sign | 0x7e00;
    double r = fabs(round_to_format(v, 11, -14, 65504.0));
    if (isinf(r)) return sign | 0x7c00;
    if (r < ldexp(1.0, -14)) return sign | (uint16_t)(r * 16777216.0);   /* r / 2^-24 */
    int e = ilogb(r);
    uint16_t mant = (uint16_t)((ldexp(r, -e) - 1.0) * 1024.0);
    return sign | (uint16_t)((e + 15) << 10) | mant;
}

double attnc_bf16_to_double(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t attnc_double_to_bf16(double v) {
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    if (isnan(v)) return sign | 0x7fc0;
    float f = (float)round_to_format(v, 8, -126, ldexp(255.0, 120));
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return (uint16_t)(bits >> 16);
}

double tensor_load(const attnc_tensor *t, int64_t off) {
    switch (t->dtype) {
    case ATTNC_F32: return ((const float *)t->data)[off];
    case ATTNC_F64: return ((const double *)t->data)[off];
    case ATTNC_I32: return ((const int32_t *)t->data)[off];
    case ATTNC_F16: return attnc_f16_to_double(((const uint16_t *)t->data)[off]);
    case ATTNC_BF16: return attnc_bf16_to_double(((const uint16_t *)t->data)[off]);
    }
    return NAN;
}

void tensor_store(attnc_tensor *t, int64_t off, double v) {
    switch (t->dtype) {
    case ATTNC_F32: ((float *)t->data)[off] = attnc_double_to_f32(v); break;
    case ATTNC_F64: ((double *)t->data)[off] = v; break;
    case ATTNC_F16: ((uint16_t *)t->data)[off] = attnc_double_to_f16(v); break;
    case ATTNC_BF16: ((uint16_t *)t->data)[off] = attnc_double_to_bf16(v); break;
    case ATTNC_I32: {
        double r = isnan(v) ? 0 : rint(v);
        if (r > INT32_MAX) r = INT32_MAX;
        if (r < INT32_MIN) r = INT32_MIN;
        ((int32_t *)t->data)[off] = (int32_t)r;
        break;
    }
    }
}
