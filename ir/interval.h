/* Interval analysis of IR expressions over a box of index-variable ranges, shared by the
 * tile classifier (ir/mask.c) and the bounds query (ir_expr_int_bounds). Private to ir/. */
#ifndef ATTNC_IR_INTERVAL_H
#define ATTNC_IR_INTERVAL_H
#include "ir/ir.h"

/* Closed ranges of the integer variables (q_idx, kv_idx, head, batch, seq_q, seq_k);
 * the others (score, x) are unknown floats. */
typedef struct ir_box {
    int64_t lo[IR_VAR_COUNT], hi[IR_VAR_COUNT];
} ir_box;

ir_box ir_box_of_rect(const ir_rect *r);

/* Which truth values the bool expression e can take somewhere in the box (sound: a value
 * it can take is never left out). */
void ir_interval_truth(const ir_expr *e, const ir_box *b, bool *can_true, bool *can_false);

/* floor(a / b) for b != 0. */
int64_t ir_floor_div(int64_t a, int64_t b);

#endif
