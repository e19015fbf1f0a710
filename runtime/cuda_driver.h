/* The CUDA driver API loaded with dlopen (libcuda.so.1): device selection, primary context,
 * module load, memory, launch. No cuda.h needed; handles are opaque pointers and results
 * ints (0 = CUDA_SUCCESS). Everything lives in a cuda_driver the caller owns. */
#ifndef ATTNC_RUNTIME_CUDA_DRIVER_H
#define ATTNC_RUNTIME_CUDA_DRIVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t cu_deviceptr;

typedef struct cuda_driver {
    void *handle;
    /* state after cuda_driver_open_device */
    int device;                     /* CUdevice */
    void *context;                  /* CUcontext (the device's primary context) */
    bool context_retained;
    bool context_pushed;            /* open_device left the context current on its thread */
    int cc_major, cc_minor;
    int sm_count;
    int smem_optin;                 /* max dynamic shared memory per block with opt-in, bytes */
    char name[128];

    int (*init)(unsigned flags);
    int (*driver_get_version)(int *v);
    int (*device_get_count)(int *n);
    int (*device_get)(int *dev, int ordinal);
    int (*device_get_name)(char *name, int len, int dev);
    int (*device_get_attribute)(int *v, int attrib, int dev);
    int (*primary_ctx_retain)(void **ctx, int dev);
    int (*primary_ctx_release)(int dev);
    int (*ctx_push)(void *ctx);
    int (*ctx_pop)(void **ctx);
    int (*ctx_synchronize)(void);
    int (*module_load_data)(void **mod, const void *image);
    int (*module_unload)(void *mod);
    int (*module_get_function)(void **fn, void *mod, const char *name);
    int (*func_set_attribute)(void *fn, int attrib, int value);
    int (*func_get_attribute)(int *v, int attrib, void *fn);
    int (*mem_alloc)(cu_deviceptr *p, size_t bytes);
    int (*mem_free)(cu_deviceptr p);
    int (*memcpy_htod)(cu_deviceptr dst, const void *src, size_t bytes);
    int (*memcpy_dtoh)(void *dst, cu_deviceptr src, size_t bytes);
    int (*memset_d8)(cu_deviceptr dst, unsigned char v, size_t n);
    int (*launch_kernel)(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                         unsigned bz, unsigned smem, void *stream, void **params, void **extra);
    int (*get_error_string)(int err, const char **s);
    int (*get_error_name)(int err, const char **s);
    /* optional (NULL where the driver lacks them): the stream-ordered allocator (CUDA 11.2)
       gives split-KV workspaces per launch without a device-wide synchronisation */
    int (*mem_alloc_async)(cu_deviceptr *p, size_t bytes, void *stream);
    int (*mem_free_async)(cu_deviceptr p, void *stream);
    int (*stream_synchronize)(void *stream);
} cuda_driver;

/* Driver-API constants attnc uses (values from cuda.h, stable across versions). */
enum {
    CUDRV_ATTR_MAX_SHARED_PER_BLOCK_OPTIN = 97,
    CUDRV_ATTR_MULTIPROCESSOR_COUNT = 16,
    CUDRV_ATTR_CC_MAJOR = 75,
    CUDRV_ATTR_CC_MINOR = 76,
    CUDRV_FUNC_ATTR_NUM_REGS = 4,
    CUDRV_FUNC_ATTR_LOCAL_SIZE = 3,
    CUDRV_FUNC_ATTR_MAX_DYNAMIC_SHARED = 8,
    CUDRV_ERROR_NO_DEVICE = 100,
};

/* Loads libcuda.so.1 ($ATTNC_CUDA_LIBRARY overrides) and resolves the table. */
bool cuda_driver_open(cuda_driver *drv, char *err, size_t errlen);
/* cuInit, picks device `ordinal` ($ATTNC_CUDA_DEVICE or 0 when ordinal < 0), retains its
 * primary context and makes it current; fills cc/sm_count/smem_optin. */
bool cuda_driver_open_device(cuda_driver *drv, int ordinal, char *err, size_t errlen);
void cuda_driver_close(cuda_driver *drv);

/* A long-lived handle does not keep the context current on the thread that opened it:
 * release_current pops it there, and each use brackets itself with push/pop so any
 * thread may launch. Both return false with err set on a driver error. */
bool cuda_driver_release_current(cuda_driver *drv, char *err, size_t errlen);
bool cuda_driver_push(const cuda_driver *drv, char *err, size_t errlen);
void cuda_driver_pop(const cuda_driver *drv);

/* "what failed: CUDA_ERROR_X (description)" into err; returns false for use in returns. */
bool cuda_driver_fail(const cuda_driver *drv, int rc, const char *what, char *err, size_t errlen);

#endif
