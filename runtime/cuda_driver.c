/* dlopen'd CUDA driver API. */
#include "runtime/cuda_driver.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool load_sym(void *handle, const char *name, void *fnptr, size_t size) {
    void *p = dlsym(handle, name);
    if (!p) return false;
    memcpy(fnptr, &p, size);
    return true;
}
#define LOAD(field, name) load_sym(drv->handle, name, &drv->field, sizeof drv->field)

bool cuda_driver_open(cuda_driver *drv, char *err, size_t errlen) {
    memset(drv, 0, sizeof *drv);
    drv->device = -1;
    const char *env = getenv("ATTNC_CUDA_LIBRARY");
    const char *path = env && *env ? env : "libcuda.so.1";
    drv->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!drv->handle) {
        const char *e = dlerror();
        char first[256];
        snprintf(first, sizeof first, "%s", e ? e : "not found");
        if (!(env && *env)) drv->handle = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!drv->handle) {
            snprintf(err, errlen, "cannot load the CUDA driver (%s); the cuda target needs an NVIDIA GPU "
                     "with its driver installed (use --target ref or cpu on this machine)", first);
            return false;
        }
    }
    /* The _v2 names are what cuda.h maps the plain names to since CUDA 4/11. */
    bool ok = LOAD(init, "cuInit") && LOAD(driver_get_version, "cuDriverGetVersion") &&
              LOAD(device_get_count, "cuDeviceGetCount") && LOAD(device_get, "cuDeviceGet") &&
              LOAD(device_get_name, "cuDeviceGetName") && LOAD(device_get_attribute, "cuDeviceGetAttribute") &&
              LOAD(primary_ctx_retain, "cuDevicePrimaryCtxRetain") &&
              LOAD(primary_ctx_release, "cuDevicePrimaryCtxRelease_v2") &&
              LOAD(ctx_push, "cuCtxPushCurrent_v2") && LOAD(ctx_pop, "cuCtxPopCurrent_v2") &&
              LOAD(ctx_synchronize, "cuCtxSynchronize") && LOAD(module_load_data, "cuModuleLoadData") &&
              LOAD(module_unload, "cuModuleUnload") && LOAD(module_get_function, "cuModuleGetFunction") &&
              LOAD(func_set_attribute, "cuFuncSetAttribute") && LOAD(func_get_attribute, "cuFuncGetAttribute") &&
              LOAD(mem_alloc, "cuMemAlloc_v2") && LOAD(mem_free, "cuMemFree_v2") &&
              LOAD(memcpy_htod, "cuMemcpyHtoD_v2") && LOAD(memcpy_dtoh, "cuMemcpyDtoH_v2") &&
              LOAD(memset_d8, "cuMemsetD8_v2") && LOAD(launch_kernel, "cuLaunchKernel") &&
              LOAD(get_error_string, "cuGetErrorString") && LOAD(get_error_name, "cuGetErrorName");
    if (ok) {
        LOAD(mem_alloc_async, "cuMemAllocAsync");
        LOAD(mem_free_async, "cuMemFreeAsync");
        LOAD(stream_synchronize, "cuStreamSynchronize");
    }
    if (!ok) {
        snprintf(err, errlen, "%s lacks driver API entry points attnc needs (cuFuncSetAttribute, "
                 "cuMemAlloc_v2, ...); update the NVIDIA driver", path);
        cuda_driver_close(drv);
        return false;
    }
    return true;
}

bool cuda_driver_fail(const cuda_driver *drv, int rc, const char *what, char *err, size_t errlen) {
    const char *name = NULL, *desc = NULL;
    if (drv->get_error_name) drv->get_error_name(rc, &name);
    if (drv->get_error_string) drv->get_error_string(rc, &desc);
    snprintf(err, errlen, "%s failed: %s (%s)", what, name ? name : "CUDA error", desc ? desc : "no description");
    return false;
}

bool cuda_driver_open_device(cuda_driver *drv, int ordinal, char *err, size_t errlen) {
    int rc = drv->init(0);
    if (rc == CUDRV_ERROR_NO_DEVICE) {
        snprintf(err, errlen, "no CUDA device: the driver is installed but reports no GPU (cuInit: CUDA_ERROR_NO_DEVICE)");
        return false;
    }
    if (rc) return cuda_driver_fail(drv, rc, "cuInit", err, errlen);
    int count = 0;
    if ((rc = drv->device_get_count(&count))) return cuda_driver_fail(drv, rc, "cuDeviceGetCount", err, errlen);
    if (ordinal < 0) {
        const char *env = getenv("ATTNC_CUDA_DEVICE");
        ordinal = env && *env ? atoi(env) : 0;
    }
    if (count == 0) {
        snprintf(err, errlen, "no CUDA device found");
        return false;
    }
    if (ordinal < 0 || ordinal >= count) {
        snprintf(err, errlen, "CUDA device %d does not exist; this machine has %d (0..%d)", ordinal, count, count - 1);
        return false;
    }
    if ((rc = drv->device_get(&drv->device, ordinal))) return cuda_driver_fail(drv, rc, "cuDeviceGet", err, errlen);
    drv->device_get_name(drv->name, (int)sizeof drv->name, drv->device);
    drv->device_get_attribute(&drv->cc_major, CUDRV_ATTR_CC_MAJOR, drv->device);
    drv->device_get_attribute(&drv->cc_minor, CUDRV_ATTR_CC_MINOR, drv->device);
    drv->device_get_attribute(&drv->sm_count, CUDRV_ATTR_MULTIPROCESSOR_COUNT, drv->device);
    drv->device_get_attribute(&drv->smem_optin, CUDRV_ATTR_MAX_SHARED_PER_BLOCK_OPTIN, drv->device);
    if ((rc = drv->primary_ctx_retain(&drv->context, drv->device)))
        return cuda_driver_fail(drv, rc, "cuDevicePrimaryCtxRetain", err, errlen);
    drv->context_retained = true;
    if ((rc = drv->ctx_push(drv->context))) return cuda_driver_fail(drv, rc, "cuCtxPushCurrent", err, errlen);
    drv->context_pushed = true;
    return true;
}

bool cuda_driver_release_current(cuda_driver *drv, char *err, size_t errlen) {
    if (!drv->context_pushed) return true;
    void *popped = NULL;
    int rc = drv->ctx_pop(&popped);
    if (rc) return cuda_driver_fail(drv, rc, "cuCtxPopCurrent", err, errlen);
    drv->context_pushed = false;
    return true;
}

bool cuda_driver_push(const cuda_driver *drv, char *err, size_t errlen) {
    int rc = drv->ctx_push(drv->context);
    return rc ? cuda_driver_fail(drv, rc, "cuCtxPushCurrent", err, errlen) : true;
}

void cuda_driver_pop(const cuda_driver *drv) {
    void *popped = NULL;
    drv->ctx_pop(&popped);
}

void cuda_driver_close(cuda_driver *drv) {
    if (drv->context_retained) {
        void *popped = NULL;
        if (drv->context_pushed) drv->ctx_pop(&popped);
        drv->primary_ctx_release(drv->device);
    }
    if (drv->handle) dlclose(drv->handle);
    memset(drv, 0, sizeof *drv);
}
