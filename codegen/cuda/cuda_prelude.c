/* The device primitives the emitted kernels are written against. The CUDA flavour maps them
 * to PTX (inline asm, no CUDA headers, so NVRTC needs no include path); the simulator
 * flavour includes tests/cuda/sim_prims.h, which models the same primitives per lane on the
 * CPU. Kernel bodies only ever use these names, so the simulator runs the exact emitted code. */
#include "codegen/cuda/cuda_emit.h"

static const char cuda_prims[] =
    "#pragma nv_diag_suppress 177\n"   /* unused static helpers are expected */
    "typedef unsigned int u32;\n"
    "typedef unsigned short u16;\n"
    "typedef long long i64;\n"
    "typedef unsigned long long u64;\n"
    "#define ATTNC_DEVICE static __device__ __forceinline__\n"
    "#define FRAG_FN static __device__ __host__ __forceinline__\n"
    "#define ATTNC_KERNEL extern \"C\" __global__\n"
    "#define ATTNC_LAUNCH_BOUNDS(t, m) __launch_bounds__(t, m)\n"
    "#define ATTNC_CONSTANT __constant__\n"
    "#define ATTNC_TID ((int)threadIdx.x)\n"
    "#define ATTNC_BID_X ((int)blockIdx.x)\n"
    "#define ATTNC_BID_Y ((int)blockIdx.y)\n"
    "#define ATTNC_BID_Z ((int)blockIdx.z)\n"
    "#define ATTNC_INF __int_as_float(0x7f800000)\n"
    "#define ATTNC_NAN __int_as_float(0x7fffffff)\n"
    "#define ATTNC_DINF __longlong_as_double(0x7ff0000000000000ll)\n"
    "#define LDG(p) (*(p))\n"
    "#define STG(p, v) (*(p) = (v))\n"
    "extern __shared__ __align__(128) unsigned char attnc_smem[];\n"
    "ATTNC_DEVICE u32 smem_base(void) {\n"
    "    u32 r;\n"
    "    asm(\"{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }\" : \"=r\"(r) : \"l\"(attnc_smem));\n"
    "    return r;\n"
    "}\n"
    /* cp.async.cg: 16 bytes, L2 only; src-size < 16 zero-fills the rest (0 = pure zero fill). */
    "ATTNC_DEVICE void cp_async16(u32 dst, const void *src, int bytes) {\n"
    "    asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16, %2;\\n\" :: \"r\"(dst), \"l\"(src), \"r\"(bytes) : \"memory\");\n"
    "}\n"
    "ATTNC_DEVICE void cp_async_commit(void) { asm volatile(\"cp.async.commit_group;\\n\" ::: \"memory\"); }\n"
    "ATTNC_DEVICE void cp_async_wait0(void) { asm volatile(\"cp.async.wait_group 0;\\n\" ::: \"memory\"); }\n"
    "ATTNC_DEVICE void cp_async_wait1(void) { asm volatile(\"cp.async.wait_group 1;\\n\" ::: \"memory\"); }\n"
    /* threadIdx.x through volatile asm: the tile loaders recompute their addresses from it on
       every call instead of the compiler hoisting one register per copied chunk out of the
       main loop (dozens for wide heads). */
    "ATTNC_DEVICE int attnc_tid_opaque(void) { int t; asm volatile(\"mov.u32 %0, %%tid.x;\" : \"=r\"(t)); return t; }\n"
    "ATTNC_DEVICE void bar_sync(void) { __syncthreads(); }\n"
    "ATTNC_DEVICE void ldsm_x4(u32 addr, u32 *r) {\n"
    "    asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                 : \"=r\"(r[0]), \"=r\"(r[1]), \"=r\"(r[2]), \"=r\"(r[3]) : \"r\"(addr));\n"
    "}\n"
    "ATTNC_DEVICE void ldsm_x4_t(u32 addr, u32 *r) {\n"
    "    asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                 : \"=r\"(r[0]), \"=r\"(r[1]), \"=r\"(r[2]), \"=r\"(r[3]) : \"r\"(addr));\n"
    "}\n"
    "ATTNC_DEVICE void mma_bf16(float *d, const u32 *a, const u32 *b) {\n"
    "    asm(\"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\\n\"\n"
    "        : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3])\n"
    "        : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
    "}\n"
    "ATTNC_DEVICE void mma_f16(float *d, const u32 *a, const u32 *b) {\n"
    "    asm(\"mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\\n\"\n"
    "        : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3])\n"
    "        : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
    "}\n"
    "ATTNC_DEVICE float shfl_xor(float v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }\n"
    /* literal PTX: cvt.rn.bf16x2.f32 d, a, b puts a in the HIGH half, b in the low half */
    "ATTNC_DEVICE u32 cvt_rn_bf16x2(float a, float b) {\n"
    "    u32 r; asm(\"cvt.rn.bf16x2.f32 %0, %1, %2;\\n\" : \"=r\"(r) : \"f\"(a), \"f\"(b)); return r;\n"
    "}\n"
    "ATTNC_DEVICE u32 cvt_rn_f16x2(float a, float b) {\n"
    "    u32 r; asm(\"cvt.rn.f16x2.f32 %0, %1, %2;\\n\" : \"=r\"(r) : \"f\"(a), \"f\"(b)); return r;\n"
    "}\n"
    "ATTNC_DEVICE float bf16_to_f(u16 x) { return __uint_as_float(((u32)x) << 16); }\n"
    "ATTNC_DEVICE u16 f_to_bf16(float x) { u16 r; asm(\"cvt.rn.bf16.f32 %0, %1;\\n\" : \"=h\"(r) : \"f\"(x)); return r; }\n"
    "ATTNC_DEVICE float f16_to_f(u16 x) { float r; asm(\"cvt.f32.f16 %0, %1;\\n\" : \"=f\"(r) : \"h\"(x)); return r; }\n"
    "ATTNC_DEVICE u16 f_to_f16(float x) { u16 r; asm(\"cvt.rn.f16.f32 %0, %1;\\n\" : \"=h\"(r) : \"f\"(x)); return r; }\n"
    "ATTNC_DEVICE u16 lds_u16(u32 a) { u16 v; asm volatile(\"ld.shared.u16 %0, [%1];\\n\" : \"=h\"(v) : \"r\"(a) : \"memory\"); return v; }\n"
    "ATTNC_DEVICE void sts_u16(u32 a, u16 v) { asm volatile(\"st.shared.u16 [%0], %1;\\n\" :: \"r\"(a), \"h\"(v) : \"memory\"); }\n"
    "ATTNC_DEVICE u32 lds_u32(u32 a) { u32 v; asm volatile(\"ld.shared.u32 %0, [%1];\\n\" : \"=r\"(v) : \"r\"(a) : \"memory\"); return v; }\n"
    "ATTNC_DEVICE void sts_u32(u32 a, u32 v) { asm volatile(\"st.shared.u32 [%0], %1;\\n\" :: \"r\"(a), \"r\"(v) : \"memory\"); }\n"
    "ATTNC_DEVICE float lds_f32(u32 a) { float v; asm volatile(\"ld.shared.f32 %0, [%1];\\n\" : \"=f\"(v) : \"r\"(a) : \"memory\"); return v; }\n"
    "ATTNC_DEVICE void sts_f32(u32 a, float v) { asm volatile(\"st.shared.f32 [%0], %1;\\n\" :: \"r\"(a), \"f\"(v) : \"memory\"); }\n"
    "ATTNC_DEVICE void sts_f32x2(u32 a, float x, float y) { asm volatile(\"st.shared.v2.f32 [%0], {%1, %2};\\n\" :: \"r\"(a), \"f\"(x), \"f\"(y) : \"memory\"); }\n"
    "ATTNC_DEVICE void lds_f32x4(u32 a, float *v) {\n"
    "    asm volatile(\"ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\\n\" : \"=f\"(v[0]), \"=f\"(v[1]), \"=f\"(v[2]), \"=f\"(v[3]) : \"r\"(a) : \"memory\");\n"
    "}\n"
    "ATTNC_DEVICE void lds_u32x4(u32 a, u32 *v) {\n"
    "    asm volatile(\"ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\\n\" : \"=r\"(v[0]), \"=r\"(v[1]), \"=r\"(v[2]), \"=r\"(v[3]) : \"r\"(a) : \"memory\");\n"
    "}\n"
    "ATTNC_DEVICE void warp_sync(void) { __syncwarp(0xffffffffu); }\n"
    "ATTNC_DEVICE float ex2(float x) { float r; asm(\"ex2.approx.ftz.f32 %0, %1;\\n\" : \"=f\"(r) : \"f\"(x)); return r; }\n"
    "ATTNC_DEVICE void attnc_sincos(float x, float *s, float *c) { __sincosf(x, s, c); }\n";

/* Helpers written once in the common subset of CUDA C++ and C. */
static const char common_helpers[] =
    /* pack(lo, hi): lo in bits 0..15 as the mma operand wants it (cuda-kernels.md §1.1); the
       simulator models cvt literally, so a swapped order here fails the simulator tests */
    "ATTNC_DEVICE u32 pack_bf16(float lo, float hi) { return cvt_rn_bf16x2(hi, lo); }\n"
    "ATTNC_DEVICE u32 pack_f16(float lo, float hi) { return cvt_rn_f16x2(hi, lo); }\n"
    "ATTNC_DEVICE int attnc_floordiv(int a, int b) {\n"
    "    if (b == 0) return 0;\n"
    "    int q = a / b;\n"
    "    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;\n"
    "    return q;\n"
    "}\n"
    "ATTNC_DEVICE int attnc_floormod(int a, int b) {\n"
    "    if (b == 0) return 0;\n"
    "    int r = a % b;\n"
    "    if (r != 0 && ((r < 0) != (b < 0))) r += b;\n"
    "    return r;\n"
    "}\n"
    "ATTNC_DEVICE float attnc_pow(float a, float b) { return powf(a, b); }\n"
    "ATTNC_DEVICE void attnc_iv_mul(double al, double ah, double bl, double bh, double *l, double *h) {\n"
    "    double p0 = al * bl, p1 = al * bh, p2 = ah * bl, p3 = ah * bh;\n"
    "    *l = fmin(fmin(p0, p1), fmin(p2, p3));\n"
    "    *h = fmax(fmax(p0, p1), fmax(p2, p3));\n"
    "}\n"
    /* Angle reduction in double so large positions keep their phase (f32 would lose it). */
    "ATTNC_DEVICE void attnc_rope_cs(double pos, double inv_freq, float *s, float *c) {\n"
    "    double a = pos * inv_freq;\n"
    "    a -= 6.283185307179586 * rint(a * 0.15915494309189535);\n"
    "    attnc_sincos((float)a, s, c);\n"
    "}\n";

static const char fragment_text[] =
#define FRAG_TEXT(...) #__VA_ARGS__
#include "codegen/cuda/fragment_index.inc"
#undef FRAG_TEXT
    ;

void cuda_emit_prelude(FILE *out, bool sim) {
    if (sim) {
        fputs("/* simulator build: primitives modelled per lane on the CPU */\n"
              "#include \"tests/cuda/sim_prims.h\"\n", out);
    } else {
        fputs(cuda_prims, out);
    }
    fputs(common_helpers, out);
    fputs("/* fragment_index.inc (shared with the CPU simulator) */\n", out);
    fputs(fragment_text, out);
    fputs("\n\n", out);
}

const char *cuda_fragment_index_text(void) { return fragment_text; }
