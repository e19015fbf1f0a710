/* The per-lane index functions the CUDA kernels are built from (codegen/cuda/fragment_index.inc),
 * checked against the literal PTX ISA rules (cuda-kernels.md §7 tests a-c, e):
 * (a) fragment tables vs the PTX formulas; (b) swizzled shared memory -> ldmatrix model ->
 * fragments -> the original tile, for Q (A), K (B) and V (B, .trans) at every width the
 * generator uses; (c) one mma.m16n8k16 from ldmatrix'd fragments vs a naive GEMM; the
 * accumulator -> A repack; bank-conflict freedom of every ldmatrix phase and cp.async wave;
 * the split offsets the kernels use against the plain offset. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "codegen/cuda/fragment_index.h"

/* ---------------------------------------------------------------- literal PTX models */

/* PTX "Matrix Fragments for mma.m16n8k16 with floating point type", element index i of the
 * fragment (a0..a7, b0..b3, c0..c3), groupID = lane >> 2, threadID_in_group = lane % 4. */
static int ptx_a_row(int lane, int i) { return (lane >> 2) + ((i == 2 || i == 3 || i == 6 || i == 7) ? 8 : 0); }
static int ptx_a_col(int lane, int i) { return (lane % 4) * 2 + (i & 1) + (i >= 4 ? 8 : 0); }
static int ptx_b_row(int lane, int i) { return (lane % 4) * 2 + (i & 1) + (i >= 2 ? 8 : 0); }
static int ptx_b_col(int lane) { return lane >> 2; }
static int ptx_c_row(int lane, int i) { return (lane >> 2) + (i >= 2 ? 8 : 0); }
static int ptx_c_col(int lane, int i) { return (lane % 4) * 2 + (i & 1); }

/* ldmatrix.sync.aligned.m8n8.x4{.trans}.shared.b16: matrix m's rows come from lanes
 * 8m..8m+7; lane l receives in register m elements (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of
 * matrix m, or with .trans (2(l%4), l/4) and (2(l%4)+1, l/4); first element in the low half. */
static void ptx_ldmatrix_x4(const uint8_t *smem, const int addr[32], int trans, uint32_t out[32][4]) {
    for (int l = 0; l < 32; l++)
        for (int m = 0; m < 4; m++) {
            uint16_t e[2];
            for (int h = 0; h < 2; h++) {
                int row = trans ? 2 * (l % 4) + h : l / 4;
                int col = trans ? l / 4 : 2 * (l % 4) + h;
                memcpy(&e[h], smem + addr[8 * m + row] + 2 * col, 2);
            }
            out[l][m] = (uint32_t)e[0] | ((uint32_t)e[1] << 16);
        }
}

/* mma.m16n8k16 on small integers stored as uint16 (exact in float). */
static void ptx_mma(const uint32_t a[32][4], const uint32_t b[32][2], double c[32][4]) {
    double A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        for (int i = 0; i < 8; i++) A[ptx_a_row(l, i)][ptx_a_col(l, i)] = (double)(uint16_t)(a[l][i >> 1] >> (16 * (i & 1)));
        for (int i = 0; i < 4; i++) B[ptx_b_row(l, i)][ptx_b_col(l)] = (double)(uint16_t)(b[l][i >> 1] >> (16 * (i & 1)));
    }
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < 4; i++) {
            double acc = 0;
            for (int k = 0; k < 16; k++) acc += A[ptx_c_row(l, i)][k] * B[k][ptx_c_col(l, i)];
            c[l][i] += acc;
        }
}

/* ---------------------------------------------------------------- (a) tables */

static void test_tables(void) {
    int bad = 0;
    for (int l = 0; l < 32; l++) {
        for (int i = 0; i < 8; i++) {
            bad += frag_a_row(l, i >> 1) != ptx_a_row(l, i);
            bad += frag_a_col(l, i >> 1, i & 1) != ptx_a_col(l, i);
        }
        for (int i = 0; i < 4; i++) {
            bad += frag_b_k(l, i >> 1, i & 1) != ptx_b_row(l, i);
            bad += frag_acc_row(l, i) != ptx_c_row(l, i);
            bad += frag_acc_col(l, i) != ptx_c_col(l, i);
        }
        bad += frag_b_n(l) != ptx_b_col(l);
        bad += frag_g(l) != l / 4 || frag_t(l) != l % 4;
    }
    CHECK_MSG(bad == 0, "%d fragment table entries differ from the PTX formulas", bad);
    /* the warp tile: warp wr owns rows 16wr..16wr+15 of each 16*warps_r slab */
    CHECK(tile_acc_row(1, 2, 4, 5, 3) == 64 + 32 + 1 + 8);
    CHECK(tile_acc_col(3, 6, 1) == 24 + 4 + 1);
    /* every (row, col) of a 16 x 8 accumulator tile is held by exactly one (lane, i) */
    int seen[16][8] = {{0}};
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < 4; i++) seen[frag_acc_row(l, i)][frag_acc_col(l, i)]++;
    int once = 0;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 8; c++) once += seen[r][c] == 1;
    CHECK(once == 128);
}

/* ---------------------------------------------------------------- layout */

static const int widths[] = {16, 32, 48, 64, 80, 96, 112, 128, 144, 192, 256, 320, 512, 576};
enum { N_WIDTHS = sizeof widths / sizeof widths[0] };

static void test_layout_bijection(void) {
    for (int w = 0; w < N_WIDTHS; w++) {
        int width = widths[w], rows = 64;
        int n = rows * width;
        unsigned char *hit = calloc((size_t)n * 2, 1);
        int bad = 0;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < width; c++) {
                int off = smem_tile_offset(r, c, rows, width);
                if (off < 0 || off >= 2 * n || off % 2 || hit[off]++) bad++;
                /* chunks stay 16-byte units: the 8 elements of a chunk are contiguous */
                if (smem_tile_offset(r, c, rows, width) - smem_tile_offset(r, c & ~7, rows, width) != 2 * (c & 7)) bad++;
            }
        CHECK_MSG(bad == 0, "width %d: smem_tile_offset is not a bijection onto the tile (%d bad)", width, bad);
        /* the split form the kernels use equals the plain offset */
        int split_bad = 0;
        for (int r0 = 0; r0 < rows; r0 += 8)
            for (int c0 = 0; c0 < width; c0 += 16)
                for (int rl = 0; rl < 16 && r0 + rl < rows; rl++)
                    for (int cl = 0; cl < 16; cl += 8)
                        split_bad += smem_frag_offset(r0, c0, rl, cl, rows, width) != smem_tile_offset(r0 + rl, c0 + cl, rows, width);
        CHECK_MSG(split_bad == 0, "width %d: smem_frag_offset differs from smem_tile_offset in %d places", width, split_bad);
        free(hit);
    }
}

/* Any 8 consecutive rows at one 16-byte chunk column land in 8 distinct bank groups (one
 * conflict-free ldmatrix phase), and the cp.async copy split writes each wave of 8
 * consecutive threads into 8 distinct bank groups. */
static void test_bank_conflicts(void) {
    for (int w = 0; w < N_WIDTHS; w++) {
        int width = widths[w], rows = 64, bad = 0;
        for (int r0 = 0; r0 + 8 <= rows; r0++)
            for (int c = 0; c < width; c += 8) {
                int seen[8] = {0};
                for (int r = r0; r < r0 + 8; r++) seen[(smem_tile_offset(r, c, rows, width) / 16) % 8]++;
                for (int s = 0; s < 8; s++) bad += seen[s] > 1;
            }
        CHECK_MSG(bad == 0, "width %d: %d ldmatrix phases with bank conflicts", width, bad);
        int wave_bad = 0, chunks = rows * width / 8;
        for (int q0 = 0; q0 + 8 <= chunks; q0 += 8) {
            int seen[8] = {0};
            for (int q = q0; q < q0 + 8; q++)
                seen[(smem_tile_offset(copy_chunk_row(q, rows, width), copy_chunk_col(q, rows, width), rows, width) / 16) % 8]++;
            for (int s = 0; s < 8; s++) wave_bad += seen[s] > 1;
        }
        CHECK_MSG(wave_bad == 0, "width %d: %d cp.async store waves with bank conflicts", width, wave_bad);
    }
}

/* ---------------------------------------------------------------- (b) round trips */

static uint16_t tile_value(int r, int c) { return (uint16_t)((r * 977 + c * 131 + 7) & 0x7FFF); }

static void fill_tile(uint8_t *smem, int rows, int width) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < width; c++) {
            uint16_t v = tile_value(r, c);
            memcpy(smem + smem_tile_offset(r, c, rows, width), &v, 2);
        }
}

static void test_ldmatrix_round_trips(void) {
    for (int w = 0; w < N_WIDTHS; w++) {
        int width = widths[w], rows = 32;
        uint8_t *smem = malloc((size_t)rows * width * 2);
        fill_tile(smem, rows, width);
        int bad_a = 0, bad_b = 0, bad_t = 0, bad_align = 0;
        for (int r0 = 0; r0 < rows; r0 += 16)
            for (int c0 = 0; c0 < width; c0 += 16) {
                int addr[32];
                uint32_t reg[32][4];
                /* Q as A operand */
                for (int l = 0; l < 32; l++) addr[l] = smem_frag_offset(r0, c0, ldsm_a_row(l), ldsm_a_col(l), rows, width);
                for (int l = 0; l < 32; l++) bad_align += addr[l] % 16 != 0;
                ptx_ldmatrix_x4(smem, addr, 0, reg);
                for (int l = 0; l < 32; l++)
                    for (int r = 0; r < 4; r++)
                        for (int h = 0; h < 2; h++)
                            bad_a += (uint16_t)(reg[l][r] >> (16 * h)) !=
                                     tile_value(r0 + frag_a_row(l, r), c0 + frag_a_col(l, r, h));
                /* K as B operand: keys r0..r0+15 (two n8 tiles) x dims c0..c0+15 */
                for (int l = 0; l < 32; l++) addr[l] = smem_frag_offset(r0, c0, ldsm_b_row(l), ldsm_b_col(l), rows, width);
                ptx_ldmatrix_x4(smem, addr, 0, reg);
                for (int l = 0; l < 32; l++)
                    for (int i = 0; i < 4; i++)
                        for (int h = 0; h < 2; h++)
                            bad_b += (uint16_t)(reg[l][i] >> (16 * h)) !=
                                     tile_value(r0 + 8 * (i >> 1) + frag_b_n(l), c0 + frag_b_k(l, i & 1, h));
                /* V as B operand through .trans: keys r0..r0+15 x cols c0..c0+15 (two n8 tiles) */
                for (int l = 0; l < 32; l++) addr[l] = smem_frag_offset(r0, c0, ldsm_bt_row(l), ldsm_bt_col(l), rows, width);
                ptx_ldmatrix_x4(smem, addr, 1, reg);
                for (int l = 0; l < 32; l++)
                    for (int i = 0; i < 4; i++)
                        for (int h = 0; h < 2; h++)
                            bad_t += (uint16_t)(reg[l][i] >> (16 * h)) !=
                                     tile_value(r0 + frag_b_k(l, i & 1, h), c0 + 8 * (i >> 1) + frag_b_n(l));
            }
        CHECK_MSG(bad_a == 0, "width %d: Q fragments via ldmatrix differ from the tile in %d elements", width, bad_a);
        CHECK_MSG(bad_b == 0, "width %d: K fragments via ldmatrix differ in %d elements", width, bad_b);
        CHECK_MSG(bad_t == 0, "width %d: V fragments via ldmatrix.trans differ in %d elements", width, bad_t);
        CHECK_MSG(bad_align == 0, "width %d: %d ldmatrix row addresses not 16-byte aligned", width, bad_align);
        free(smem);
    }
}

/* ---------------------------------------------------------------- (c) mma and repack */

static void test_mma_tile(void) {
    /* Q [16][32], K [16][32] in swizzled smem; S = Q K^T over two k16 steps via ldmatrix +
       mma; compare with the naive product (small integers: exact) */
    enum { R = 16, W = 32 };
    uint8_t q[R * W * 2], k[R * W * 2];
    uint16_t Q[R][W], K[R][W];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < W; c++) {
            Q[r][c] = (uint16_t)((r * 3 + c * 5) % 7);
            K[r][c] = (uint16_t)((r * 2 + c * 7) % 5);
            memcpy(q + smem_tile_offset(r, c, R, W), &Q[r][c], 2);
            memcpy(k + smem_tile_offset(r, c, R, W), &K[r][c], 2);
        }
    double S[2][32][4];
    memset(S, 0, sizeof S);
    for (int ks = 0; ks < W / 16; ks++) {
        int addr[32];
        uint32_t qa[32][4], kb[32][4], b0[32][2], b1[32][2];
        for (int l = 0; l < 32; l++) addr[l] = smem_frag_offset(0, 16 * ks, ldsm_a_row(l), ldsm_a_col(l), R, W);
        ptx_ldmatrix_x4(q, addr, 0, qa);
        for (int l = 0; l < 32; l++) addr[l] = smem_frag_offset(0, 16 * ks, ldsm_b_row(l), ldsm_b_col(l), R, W);
        ptx_ldmatrix_x4(k, addr, 0, kb);
        for (int l = 0; l < 32; l++) {
            b0[l][0] = kb[l][0], b0[l][1] = kb[l][1];
            b1[l][0] = kb[l][2], b1[l][1] = kb[l][3];
        }
        ptx_mma(qa, b0, S[0]);
        ptx_mma(qa, b1, S[1]);
    }
    int bad = 0;
    for (int nt = 0; nt < 2; nt++)
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < 4; i++) {
                int row = frag_acc_row(l, i), key = tile_acc_col(nt, l, i);
                double ref = 0;
                for (int c = 0; c < W; c++) ref += (double)Q[row][c] * K[key][c];
                bad += S[nt][l][i] != ref;
            }
    CHECK_MSG(bad == 0, "S = Q K^T through ldmatrix + mma differs from the naive product in %d elements", bad);
}

/* P (16 x 16, from two S accumulator tiles) repacked with repack_tile/repack_acc and
 * pack(lo, hi) = lo in the low half must be the A fragment of P. */
static void test_repack(void) {
    float acc[2][32][4];
    for (int nt = 0; nt < 2; nt++)
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < 4; i++) acc[nt][l][i] = (float)(100 * frag_acc_row(l, i) + tile_acc_col(nt, l, i));
    int bad = 0;
    for (int l = 0; l < 32; l++)
        for (int r = 0; r < 4; r++)
            for (int h = 0; h < 2; h++) {
                float v = acc[repack_tile(0, r)][l][repack_acc(r, h)];
                /* element h of A register r must be P[a_row][a_col] */
                float want = (float)(100 * frag_a_row(l, r) + frag_a_col(l, r, h));
                bad += v != want;
            }
    CHECK_MSG(bad == 0, "accumulator -> A repack puts %d elements in the wrong place", bad);
    /* the second k chunk reads n8 tiles 2 and 3 */
    CHECK(repack_tile(1, 0) == 2 && repack_tile(1, 3) == 3);
}

static void test_packing_helpers(void) {
    CHECK(packed_row_seq(37, 8) == 4 && packed_row_head(37, 8) == 5);
    CHECK(packed_row_seq(37, 1) == 37 && packed_row_head(37, 1) == 0);
    CHECK(query_position(0, 5, 12) == 7);
    CHECK(query_position(3, 12, 5) == -4);
    /* the copy split covers every chunk of the tile exactly once */
    for (int w = 0; w < N_WIDTHS; w++) {
        int width = widths[w], rows = 48, chunks = rows * width / 8, bad = 0;
        unsigned char *hit = calloc((size_t)chunks, 1);
        for (int q = 0; q < chunks; q++) {
            int r = copy_chunk_row(q, rows, width), c = copy_chunk_col(q, rows, width);
            if (r < 0 || r >= rows || c < 0 || c >= width || c % 8 || hit[r * (width / 8) + c / 8]++) bad++;
        }
        CHECK_MSG(bad == 0, "width %d: the cp.async split misses or repeats %d chunks", width, bad);
        free(hit);
    }
}

int main(void) {
    test_tables();
    test_layout_bijection();
    test_bank_conflicts();
    test_ldmatrix_round_trips();
    test_mma_tile();
    test_repack();
    test_packing_helpers();
    return check_status("test_cuda_fragments");
}
