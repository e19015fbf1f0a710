/* Element access to strided attnc_tensor views, with the dtype conversions written out
 * (f16 and bf16 by hand, round-to-nearest-even on every narrowing), so the interpreter,
 * the .npy reader/writer and the CLI convert values the same way. */
#ifndef ATTNC_TENSOR_ACCESS_H
#define ATTNC_TENSOR_ACCESS_H
#include <stdbool.h>
#include <stdint.h>
#include "attnc/tensor.h"

/* Number of elements (1 for ndim 0); -1 when a dimension is negative or the product
 * overflows int64. */
int64_t tensor_count(const attnc_tensor *t);
/* The view's strides in elements: its own, or row-major when every slot is 0. */
void tensor_strides(const attnc_tensor *t, int64_t strides[ATTNC_MAX_DIMS]);
/* Element offset of idx[0..ndim) (no bounds check: callers index inside the shape). */
int64_t tensor_offset(const attnc_tensor *t, const int64_t *idx);
/* The element at an offset widened to double (bf16: bits << 16; i32: exact). */
double tensor_load(const attnc_tensor *t, int64_t offset);
/* Stores v rounded to the view's dtype (round to nearest even; overflow gives inf;
 * i32 views get v rounded to the nearest integer, saturated). */
void tensor_store(attnc_tensor *t, int64_t offset, double v);

double attnc_f16_to_double(uint16_t bits);
double attnc_bf16_to_double(uint16_t bits);
uint16_t attnc_double_to_f16(double v);
uint16_t attnc_double_to_bf16(double v);
float attnc_double_to_f32(double v);

#endif
