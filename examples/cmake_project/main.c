/* Runs the kernel attnc_add_kernels built ahead of time (cpu/local_window.h + its object)
 * and checks it against attnc's float64 reference interpreter through the C API. With
 * EXAMPLE_CUDA_DIR, also checks that the CUBIN was built next to it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <attnc/attnc.h>
#include "cpu/local_window.h"

enum { B = 2, S = 37, HQ = 8, HKV = 2, D = 64 };

static float q[B * S * HQ * D], k[B * S * HKV * D], v[B * S * HKV * D], o[B * S * HQ * D];
static double ref[B * S * HQ * D];

static int check_cubin(void) {
#ifdef EXAMPLE_CUDA_DIR
    const char *path = ATTNC_KERNELS_DIR "/" EXAMPLE_CUDA_DIR "/local_window.cubin";
    FILE *f = fopen(path, "rb");
    unsigned char magic[4] = { 0 };
    long size = 0;
    if (f) {
        size_t got = fread(magic, 1, 4, f);
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fclose(f);
        if (got != 4) size = 0;
    }
    if (memcmp(magic, "\177ELF", 4) != 0) {
        fprintf(stderr, "demo: %s is missing or not a CUBIN (ELF)\n", path);
        return 1;
    }
    printf("cubin %s: %ld bytes\n", path, size);
#endif
    return 0;
}

int main(void) {
    unsigned s = 1;
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) q[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / (1 << 24) - 0.5f;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) k[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / (1 << 24) - 0.5f;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) v[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / (1 << 24) - 0.5f;

    /* The ahead-of-time kernel: fill the args struct and call it (one thread, its own workspace). */
    attnc_local_window_args a;
    memset(&a, 0, sizeof a);
    a.batch = B;
    a.seq_q = S;
    a.seq_k = S;
    a.q.data = q;
    a.k.data = k;
    a.v.data = v;
    a.o.data = o;
    int rc = attnc_local_window(&a);
    if (rc != 0) {
        fprintf(stderr, "demo: attnc_local_window returned %d\n", rc);
        return 1;
    }

    /* The same spec through the JIT API on the reference interpreter. */
    attnc_options opts;
    attnc_options_init(&opts);
    opts.target = "ref";
    opts.cache_dir = "";
    attnc_context *ctx = NULL;
    attnc_program *prog = NULL;
    attnc_kernel *kern = NULL;
    attnc_error err;
    attnc_tensor t[4] = {
        { "q", ATTNC_F32, 4, { B, S, HQ, D }, { 0 }, q }, { "k", ATTNC_F32, 4, { B, S, HKV, D }, { 0 }, k },
        { "v", ATTNC_F32, 4, { B, S, HKV, D }, { 0 }, v }, { "o", ATTNC_F64, 4, { B, S, HQ, D }, { 0 }, ref },
    };
    if (attnc_context_create(&opts, &ctx, &err) != ATTNC_OK ||
        attnc_compile_file(ctx, EXAMPLE_SPEC, &prog, &err) != ATTNC_OK ||
        attnc_kernel_get(prog, "local_window", &kern, &err) != ATTNC_OK ||
        attnc_launch(kern, B, S, S, t, 4, NULL, &err) != ATTNC_OK) {
        fprintf(stderr, "demo: %s: %s\n", attnc_status_name(err.code), err.message);
        attnc_context_destroy(ctx);
        return 1;
    }
    attnc_context_destroy(ctx);

    double worst = 0, ss = 0;
    for (size_t i = 0; i < sizeof o / sizeof o[0]; i++) ss += ref[i] * ref[i];
    double rms = sqrt(ss / (double)(sizeof o / sizeof o[0]));
    for (size_t i = 0; i < sizeof o / sizeof o[0]; i++) {
        double e = fabs(o[i] - ref[i]) / (fabs(ref[i]) + rms);
        if (!(e <= worst)) worst = e;
    }
    printf("local_window (ahead of time, cpu) vs reference: max rel err %.2e\n", worst);
    if (!(worst <= 1e-5)) {
        printf("FAIL\n");
        return 1;
    }
    if (check_cubin()) return 1;
    printf("PASS\n");
    return 0;
}
