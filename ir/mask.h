/* Mask band detection, shared by the analyze-mask pass (ir/passes.c) and the tile
 * classifier (ir/mask.c). Private to ir/. */
#ifndef ATTNC_IR_MASK_H
#define ATTNC_IR_MASK_H
#include "ir/ir.h"

/* The band a mask implies on d = q_idx - kv_idx: conjunctions, disjunctions, negations and
 * selects of linear comparisons in q_idx - kv_idx are understood; every other atom (inputs,
 * head, batch, lengths, nonlinear terms) only weakens the result to inexact. has_band is
 * false when no finite end is known (NULL mask included); band_lo > band_hi (1 > 0) means
 * the mask is never true. */
ir_mask_band ir_mask_find_band(const ir_expr *mask);

#endif
