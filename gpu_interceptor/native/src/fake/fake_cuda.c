/*
 * fake_cuda.c -- Stretto's fake CUDA driver (libcuda.so.1) for tests and GPU-less clusters.
 *
 * Implements the driver calls an ordinary program and cudart touch first, with the real ABI and
 * symbol names (`_v2`, `_ptsz`), on top of the simulated GPUs in fakegpu.c:
 *  - device memory is host memory (malloc, or mmap(MAP_NORESERVE) for large blocks) charged to
 *    the simulated device's capacity, shared by all processes;
 *  - a kernel occupies the device's serial engine for blocks * block time (config, env, or a
 *    function named "..._<N>us"); launches are asynchronous, synchronize sleeps until done;
 *  - cuGetProcAddress / _v2 resolve base names by cudaVersion and per-thread-stream flag.
 * Linked with -Bsymbolic so the addresses it hands out are its own even when a preloaded shim
 * exports the same names (as the real driver's internal table is).
 */
#define _GNU_SOURCE
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fakegpu.h"

#define API STRETTO_EXPORT
#define HEADER_BYTES 256
#define BIG_ALLOC (1u << 20)
#define ALLOC_MAGIC 0x46414b45414c4c43ull

struct CUctx_st {
    int device;
    int primary;
};
struct CUmod_st {
    int unused;
};
struct CUfunc_st {
    uint64_t block_ns; /* 0 = the configured default */
};
struct CUstream_st {
    CUcontext ctx;
};
struct fake_kernel {
    uint64_t blocks;
    uint64_t block_ns;
};
struct CUgraph_st {
    int count;
    struct fake_kernel nodes[64];
};
struct CUgraphExec_st {
    int count;
    struct fake_kernel nodes[64];
};
struct CUarray_st {
    int device;
    uint64_t bytes;
};
struct CUmipmappedArray_st {
    int device;
    uint64_t bytes;
};
struct vmm_handle {
    int device; /* -1: not device memory */
    uint64_t bytes;
};
struct alloc_header {
    uint64_t magic;
    uint64_t bytes;     /* bytes charged to the device */
    uint64_t map_bytes; /* 0 = malloc'd, else mmap'd length */
    int device;
};

static int g_initialized;
static struct CUctx_st g_primary[FG_MAX_GPUS];
static __thread CUcontext t_current;
static uint64_t g_last_end[FG_MAX_GPUS]; /* end of this process's last kernel per device */

static uint32_t g_pid; /* getpid() is a syscall; cached, reset in fork children */

static void reset_pid(void) { g_pid = 0; }

static uint32_t my_pid(void) {
    if (__builtin_expect(g_pid == 0, 0)) g_pid = (uint32_t)getpid();
    return g_pid;
}

static int device_count(void) { return fg_config()->gpu_count; }

static CUresult check_device(CUdevice dev) {
    if (!__atomic_load_n(&g_initialized, __ATOMIC_ACQUIRE)) return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= device_count()) return CUDA_ERROR_INVALID_DEVICE;
    return CUDA_SUCCESS;
}

static CUresult current_device(int *dev) {
    if (!__atomic_load_n(&g_initialized, __ATOMIC_ACQUIRE)) return CUDA_ERROR_NOT_INITIALIZED;
    if (t_current == NULL) return CUDA_ERROR_INVALID_CONTEXT;
    *dev = t_current->device;
    return CUDA_SUCCESS;
}

/* ---- initialization and devices ---------------------------------------------------------- */

API CUresult cuInit(unsigned int flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    const char *fail = getenv("STRETTO_FAKE_CUDA_FAIL_INIT");
    if (fail && *fail) return (CUresult)atoi(fail);
    for (int i = 0; i < FG_MAX_GPUS; i++) {
        g_primary[i].device = i;
        g_primary[i].primary = 1;
    }
    if (fg_timeline() == NULL) return CUDA_ERROR_OPERATING_SYSTEM;
    if (!__atomic_load_n(&g_initialized, __ATOMIC_ACQUIRE)) pthread_atfork(NULL, NULL, reset_pid);
    __atomic_store_n(&g_initialized, 1, __ATOMIC_RELEASE);
    return CUDA_SUCCESS;
}

API CUresult cuDriverGetVersion(int *v) {
    if (v == NULL) return CUDA_ERROR_INVALID_VALUE;
    *v = CUDA_VERSION;
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGetCount(int *count) {
    if (count == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (!__atomic_load_n(&g_initialized, __ATOMIC_ACQUIRE)) return CUDA_ERROR_NOT_INITIALIZED;
    *count = device_count();
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGet(CUdevice *device, int ordinal) {
    if (device == NULL) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = check_device(ordinal);
    if (rc == CUDA_SUCCESS) *device = ordinal;
    return rc;
}

API CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
    CUresult rc = check_device(dev);
    if (rc != CUDA_SUCCESS) return rc;
    if (name == NULL || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "%s", fg_config()->gpus[dev].name);
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGetUuid(char uuid[16], CUdevice dev) {
    CUresult rc = check_device(dev);
    if (rc != CUDA_SUCCESS) return rc;
    for (int i = 0; i < 16; i++) uuid[i] = (char)(0x57 + i * 7 + dev);
    return CUDA_SUCCESS;
}

API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
    CUresult rc = check_device(dev);
    if (rc != CUDA_SUCCESS) return rc;
    if (bytes == NULL) return CUDA_ERROR_INVALID_VALUE;
    *bytes = (size_t)fg_config()->gpus[dev].memory;
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev) {
    CUresult rc = check_device(dev);
    if (rc != CUDA_SUCCESS) return rc;
    if (pi == NULL) return CUDA_ERROR_INVALID_VALUE;
    switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: *pi = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *pi = 2147483647; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *pi = 32; break;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *pi = 1755000; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *pi = 132; break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *pi = 0x10 + dev; break;
    case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *pi = 2619000; break;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *pi = 5120; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *pi = 2048; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *pi = 9; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *pi = 0; break;
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY:
    case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH:
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: *pi = 1; break;
    default: *pi = 0; break;
    }
    return CUDA_SUCCESS;
}

static const char *error_text(CUresult e, int name) {
    switch (e) {
    case CUDA_SUCCESS: return name ? "CUDA_SUCCESS" : "no error";
    case CUDA_ERROR_INVALID_VALUE: return name ? "CUDA_ERROR_INVALID_VALUE" : "invalid argument";
    case CUDA_ERROR_OUT_OF_MEMORY: return name ? "CUDA_ERROR_OUT_OF_MEMORY" : "out of memory";
    case CUDA_ERROR_NOT_INITIALIZED: return name ? "CUDA_ERROR_NOT_INITIALIZED" : "initialization error";
    case CUDA_ERROR_INVALID_DEVICE: return name ? "CUDA_ERROR_INVALID_DEVICE" : "invalid device ordinal";
    case CUDA_ERROR_INVALID_CONTEXT: return name ? "CUDA_ERROR_INVALID_CONTEXT" : "invalid device context";
    case CUDA_ERROR_INVALID_HANDLE: return name ? "CUDA_ERROR_INVALID_HANDLE" : "invalid resource handle";
    case CUDA_ERROR_NOT_FOUND: return name ? "CUDA_ERROR_NOT_FOUND" : "named symbol not found";
    case CUDA_ERROR_NOT_SUPPORTED: return name ? "CUDA_ERROR_NOT_SUPPORTED" : "operation not supported";
    case CUDA_ERROR_OPERATING_SYSTEM: return name ? "CUDA_ERROR_OPERATING_SYSTEM" : "OS call failed";
    default: return NULL;
    }
}

API CUresult cuGetErrorString(CUresult error, const char **pStr) {
    if (pStr == NULL) return CUDA_ERROR_INVALID_VALUE;
    *pStr = error_text(error, 0);
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

API CUresult cuGetErrorName(CUresult error, const char **pStr) {
    if (pStr == NULL) return CUDA_ERROR_INVALID_VALUE;
    *pStr = error_text(error, 1);
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- contexts ---------------------------------------------------------------------------- */

API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev) {
    (void)flags;
    CUresult rc = check_device(dev);
    if (rc != CUDA_SUCCESS) return rc;
    if (pctx == NULL) return CUDA_ERROR_INVALID_VALUE;
    CUcontext ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    ctx->device = dev;
    t_current = ctx;
    *pctx = ctx;
    return CUDA_SUCCESS;
}

API CUresult cuCtxDestroy_v2(CUcontext ctx) {
    if (ctx == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (t_current == ctx) t_current = NULL;
    if (!ctx->primary) free(ctx);
    return CUDA_SUCCESS;
}

API CUresult cuCtxGetCurrent(CUcontext *pctx) {
    if (pctx == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (!__atomic_load_n(&g_initialized, __ATOMIC_ACQUIRE)) return CUDA_ERROR_NOT_INITIALIZED;
    *pctx = t_current;
    return CUDA_SUCCESS;
}

API CUresult cuCtxSetCurrent(CUcontext ctx) {
    if (!__atomic_load_n(&g_initialized, __ATOMIC_ACQUIRE)) return CUDA_ERROR_NOT_INITIALIZED;
    t_current = ctx;
    return CUDA_SUCCESS;
}

API CUresult cuCtxPushCurrent_v2(CUcontext ctx) { return cuCtxSetCurrent(ctx); }

API CUresult cuCtxPopCurrent_v2(CUcontext *pctx) {
    if (pctx) *pctx = t_current;
    t_current = NULL;
    return CUDA_SUCCESS;
}

API CUresult cuCtxGetDevice(CUdevice *device) {
    if (device == NULL) return CUDA_ERROR_INVALID_VALUE;
    int dev;
    CUresult rc = current_device(&dev);
    if (rc == CUDA_SUCCESS) *device = dev;
    return rc;
}

static void wait_device(int dev) {
    if (dev < 0 || dev >= FG_MAX_GPUS) return;
    uint64_t end = __atomic_load_n(&g_last_end[dev], __ATOMIC_ACQUIRE);
    if (end > stretto_monotonic_ns()) stretto_sleep_until_ns(end);
}

API CUresult cuCtxSynchronize(void) {
    int dev;
    CUresult rc = current_device(&dev);
    if (rc == CUDA_SUCCESS) wait_device(dev);
    return rc;
}

API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
    CUresult rc = check_device(dev);
    if (rc != CUDA_SUCCESS) return rc;
    if (pctx == NULL) return CUDA_ERROR_INVALID_VALUE;
    *pctx = &g_primary[dev];
    return CUDA_SUCCESS;
}

API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) { return check_device(dev); }

/* ---- memory ------------------------------------------------------------------------------ */

static void injected_latency(void) {
    uint64_t ns = fg_config()->alloc_latency_ns;
    if (ns) stretto_sleep_until_ns(stretto_monotonic_ns() + ns);
}

static CUresult device_alloc(int dev, uint64_t bytes, CUdeviceptr *dptr) {
    if (dptr == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    injected_latency();
    if (fg_mem_charge(dev, my_pid(), bytes) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t total = bytes + HEADER_BYTES;
    void *base;
    uint64_t map_bytes = 0;
    if (total < BIG_ALLOC) {
        base = aligned_alloc(HEADER_BYTES, (total + HEADER_BYTES - 1) / HEADER_BYTES * HEADER_BYTES);
    } else {
        base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) base = NULL;
        map_bytes = total;
    }
    if (base == NULL) {
        fg_mem_credit(dev, my_pid(), bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    struct alloc_header *h = base;
    h->magic = ALLOC_MAGIC;
    h->bytes = bytes;
    h->map_bytes = map_bytes;
    h->device = dev;
    *dptr = (CUdeviceptr)((char *)base + HEADER_BYTES);
    return CUDA_SUCCESS;
}

static CUresult device_free(CUdeviceptr dptr) {
    if (dptr == 0) return CUDA_SUCCESS;
    struct alloc_header *h = (struct alloc_header *)((char *)(uintptr_t)dptr - HEADER_BYTES);
    if (h->magic != ALLOC_MAGIC) return CUDA_ERROR_INVALID_VALUE;
    h->magic = 0;
    fg_mem_credit(h->device, my_pid(), h->bytes);
    if (h->map_bytes)
        munmap(h, h->map_bytes);
    else
        free(h);
    return CUDA_SUCCESS;
}

API CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
    int dev;
    CUresult rc = current_device(&dev);
    if (rc != CUDA_SUCCESS) return rc;
    if (free_bytes == NULL || total == NULL) return CUDA_ERROR_INVALID_VALUE;
    uint64_t cap = fg_config()->gpus[dev].memory, used = fg_mem_used(dev);
    *total = (size_t)cap;
    *free_bytes = (size_t)(used < cap ? cap - used : 0);
    return CUDA_SUCCESS;
}

API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
    int dev;
    CUresult rc = current_device(&dev);
    return rc != CUDA_SUCCESS ? rc : device_alloc(dev, bytesize, dptr);
}

API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height,
                                unsigned int ElementSizeBytes) {
    int dev;
    CUresult rc = current_device(&dev);
    if (rc != CUDA_SUCCESS) return rc;
    if (pPitch == NULL || (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
        return CUDA_ERROR_INVALID_VALUE;
    size_t pitch = (WidthInBytes + 511) / 512 * 512;
    rc = device_alloc(dev, (uint64_t)pitch * Height, dptr);
    if (rc == CUDA_SUCCESS) *pPitch = pitch;
    return rc;
}

API CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags) {
    (void)flags;
    return cuMemAlloc_v2(dptr, bytesize);
}

API CUresult cuMemFree_v2(CUdeviceptr dptr) {
    if (!__atomic_load_n(&g_initialized, __ATOMIC_ACQUIRE)) return CUDA_ERROR_NOT_INITIALIZED;
    return device_free(dptr);
}

static CUresult alloc_async(CUdeviceptr *dptr, size_t bytesize, CUstream s) {
    if (s != NULL) return device_alloc(s->ctx->device, bytesize, dptr);
    return cuMemAlloc_v2(dptr, bytesize);
}

API CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream s) { return alloc_async(dptr, bytesize, s); }
API CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream s) {
    return alloc_async(dptr, bytesize, s);
}
API CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream s) {
    (void)pool;
    return alloc_async(dptr, bytesize, s);
}
API CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream s) {
    (void)pool;
    return alloc_async(dptr, bytesize, s);
}
API CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream s) {
    (void)s;
    return cuMemFree_v2(dptr);
}
API CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream s) {
    (void)s;
    return cuMemFree_v2(dptr);
}

API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                         unsigned long long flags) {
    (void)flags;
    if (!__atomic_load_n(&g_initialized, __ATOMIC_ACQUIRE)) return CUDA_ERROR_NOT_INITIALIZED;
    if (handle == NULL || prop == NULL || size == 0) return CUDA_ERROR_INVALID_VALUE;
    struct vmm_handle *h = calloc(1, sizeof *h);
    if (h == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    h->device = -1;
    h->bytes = size;
    if (prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE) {
        if (check_device(prop->location.id) != CUDA_SUCCESS) {
            free(h);
            return CUDA_ERROR_INVALID_DEVICE;
        }
        injected_latency();
        if (fg_mem_charge(prop->location.id, my_pid(), size) != 0) {
            free(h);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        h->device = prop->location.id;
    }
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)h;
    return CUDA_SUCCESS;
}

API CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
    struct vmm_handle *h = (struct vmm_handle *)(uintptr_t)handle;
    if (h == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (h->device >= 0) fg_mem_credit(h->device, my_pid(), h->bytes);
    free(h);
    return CUDA_SUCCESS;
}

static uint64_t format_bytes(CUarray_format f) {
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return 2;
    default: return 4;
    }
}

static uint64_t array_bytes(uint64_t w, uint64_t h, uint64_t d, CUarray_format f, unsigned ch) {
    return w * (h ? h : 1) * (d ? d : 1) * format_bytes(f) * (ch ? ch : 1);
}

static CUresult array_create(uint64_t bytes, struct CUarray_st **out) {
    int dev;
    CUresult rc = current_device(&dev);
    if (rc != CUDA_SUCCESS) return rc;
    if (out == NULL || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    injected_latency();
    if (fg_mem_charge(dev, my_pid(), bytes) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    struct CUarray_st *a = calloc(1, sizeof *a);
    if (a == NULL) {
        fg_mem_credit(dev, my_pid(), bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->device = dev;
    a->bytes = bytes;
    *out = a;
    return CUDA_SUCCESS;
}

API CUresult cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *d) {
    if (d == NULL) return CUDA_ERROR_INVALID_VALUE;
    return array_create(array_bytes(d->Width, d->Height, 1, d->Format, d->NumChannels), pHandle);
}

API CUresult cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d) {
    if (d == NULL) return CUDA_ERROR_INVALID_VALUE;
    return array_create(array_bytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels), pHandle);
}

API CUresult cuArrayDestroy(CUarray a) {
    if (a == NULL) return CUDA_ERROR_INVALID_HANDLE;
    fg_mem_credit(a->device, my_pid(), a->bytes);
    free(a);
    return CUDA_SUCCESS;
}

API CUresult cuMipmappedArrayCreate(CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned int levels) {
    if (d == NULL || levels == 0) return CUDA_ERROR_INVALID_VALUE;
    uint64_t bytes = 0, w = d->Width, h = d->Height, z = d->Depth;
    for (unsigned i = 0; i < levels; i++) {
        bytes += array_bytes(w, h, z, d->Format, d->NumChannels);
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : h;
        z = z > 1 ? z / 2 : z;
    }
    return array_create(bytes, (struct CUarray_st **)pHandle);
}

API CUresult cuMipmappedArrayDestroy(CUmipmappedArray a) { return cuArrayDestroy((CUarray)a); }

API CUresult cuMemAllocHost_v2(void **pp, size_t bytesize) {
    if (pp == NULL) return CUDA_ERROR_INVALID_VALUE;
    *pp = malloc(bytesize ? bytesize : 1);
    return *pp ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

API CUresult cuMemFreeHost(void *p) {
    free(p);
    return CUDA_SUCCESS;
}

API CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n) {
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return CUDA_SUCCESS;
}
API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) {
    memcpy((void *)(uintptr_t)dst, src, n);
    return CUDA_SUCCESS;
}
API CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return CUDA_SUCCESS;
}
API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) { return cuMemcpy(dst, src, n); }
API CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char uc, size_t n) {
    memset((void *)(uintptr_t)dst, uc, n);
    return CUDA_SUCCESS;
}
API CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int ui, size_t n) {
    unsigned int *p = (unsigned int *)(uintptr_t)dst;
    for (size_t i = 0; i < n; i++) p[i] = ui;
    return CUDA_SUCCESS;
}

/* ---- modules, streams, kernels, graphs --------------------------------------------------- */

static struct CUmod_st g_module;

API CUresult cuModuleLoadData(CUmodule *module, const void *image) {
    (void)image;
    if (module == NULL) return CUDA_ERROR_INVALID_VALUE;
    *module = &g_module;
    return CUDA_SUCCESS;
}

API CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name) {
    (void)hmod;
    if (hfunc == NULL || name == NULL) return CUDA_ERROR_INVALID_VALUE;
    struct CUfunc_st *f = calloc(1, sizeof *f);
    if (f == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    /* "anything_<N>us": each thread block keeps the simulated GPU busy for N microseconds. */
    const char *us = strrchr(name, '_');
    if (us != NULL) {
        char *end = NULL;
        double v = strtod(us + 1, &end);
        if (end != us + 1 && strcmp(end, "us") == 0) f->block_ns = (uint64_t)(v * 1000.0);
    }
    *hfunc = f;
    return CUDA_SUCCESS;
}

API CUresult cuModuleUnload(CUmodule hmod) {
    (void)hmod;
    return CUDA_SUCCESS;
}

API CUresult cuStreamCreate(CUstream *ph, unsigned int flags) {
    (void)flags;
    if (ph == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (t_current == NULL) return CUDA_ERROR_INVALID_CONTEXT;
    CUstream s = calloc(1, sizeof *s);
    if (s == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    s->ctx = t_current;
    *ph = s;
    return CUDA_SUCCESS;
}

API CUresult cuStreamDestroy_v2(CUstream s) {
    free(s);
    return CUDA_SUCCESS;
}

static CUresult stream_sync(CUstream s) {
    if (s != NULL) {
        wait_device(s->ctx->device);
        return CUDA_SUCCESS;
    }
    return cuCtxSynchronize();
}
API CUresult cuStreamSynchronize(CUstream s) { return stream_sync(s); }
API CUresult cuStreamSynchronize_ptsz(CUstream s) { return stream_sync(s); }

static CUresult launch(CUfunction f, uint64_t blocks, CUstream s) {
    int dev;
    if (s != NULL) {
        dev = s->ctx->device;
    } else {
        CUresult rc = current_device(&dev);
        if (rc != CUDA_SUCCESS) return rc;
    }
    if (blocks == 0) return CUDA_ERROR_INVALID_VALUE;
    uint64_t block_ns = (f != NULL && f->block_ns) ? f->block_ns : fg_config()->block_time_ns;
    uint64_t end = fg_enqueue(dev, my_pid(), blocks * block_ns, (uint32_t)blocks);
    uint64_t prev = __atomic_load_n(&g_last_end[dev], __ATOMIC_RELAXED);
    while (end > prev && !__atomic_compare_exchange_n(&g_last_end[dev], &prev, end, 1, __ATOMIC_RELEASE,
                                                      __ATOMIC_RELAXED)) {
    }
    return CUDA_SUCCESS;
}

#define GRID(x, y, z) ((uint64_t)(x) * (uint64_t)(y) * (uint64_t)(z))

API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                            unsigned bz, unsigned shm, CUstream s, void **params, void **extra) {
    (void)bx, (void)by, (void)bz, (void)shm, (void)params, (void)extra;
    return launch(f, GRID(gx, gy, gz), s);
}
API CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                 unsigned bz, unsigned shm, CUstream s, void **params, void **extra) {
    (void)bx, (void)by, (void)bz, (void)shm, (void)params, (void)extra;
    return launch(f, GRID(gx, gy, gz), s);
}
API CUresult cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **params, void **extra) {
    (void)params, (void)extra;
    if (c == NULL) return CUDA_ERROR_INVALID_VALUE;
    return launch(f, GRID(c->gridDimX, c->gridDimY, c->gridDimZ), c->hStream);
}
API CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *c, CUfunction f, void **params, void **extra) {
    (void)params, (void)extra;
    if (c == NULL) return CUDA_ERROR_INVALID_VALUE;
    return launch(f, GRID(c->gridDimX, c->gridDimY, c->gridDimZ), c->hStream);
}
API CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                       unsigned by, unsigned bz, unsigned shm, CUstream s, void **params) {
    (void)bx, (void)by, (void)bz, (void)shm, (void)params;
    return launch(f, GRID(gx, gy, gz), s);
}
API CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                            unsigned by, unsigned bz, unsigned shm, CUstream s, void **params) {
    (void)bx, (void)by, (void)bz, (void)shm, (void)params;
    return launch(f, GRID(gx, gy, gz), s);
}

API CUresult cuGraphCreate(CUgraph *ph, unsigned int flags) {
    (void)flags;
    if (ph == NULL) return CUDA_ERROR_INVALID_VALUE;
    *ph = calloc(1, sizeof(struct CUgraph_st));
    return *ph ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

API CUresult cuGraphAddKernelNode_v2(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t ndeps,
                                     const CUDA_KERNEL_NODE_PARAMS *p) {
    (void)deps, (void)ndeps;
    if (g == NULL || p == NULL || g->count >= 64) return CUDA_ERROR_INVALID_VALUE;
    struct fake_kernel *k = &g->nodes[g->count++];
    k->blocks = GRID(p->gridDimX, p->gridDimY, p->gridDimZ);
    k->block_ns = p->func ? p->func->block_ns : 0;
    if (node) *node = (CUgraphNode)(uintptr_t)g->count;
    return CUDA_SUCCESS;
}

API CUresult cuGraphInstantiateWithFlags(CUgraphExec *pe, CUgraph g, unsigned long long flags) {
    (void)flags;
    if (pe == NULL || g == NULL) return CUDA_ERROR_INVALID_VALUE;
    struct CUgraphExec_st *e = calloc(1, sizeof *e);
    if (e == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    e->count = g->count;
    memcpy(e->nodes, g->nodes, sizeof e->nodes);
    *pe = e;
    return CUDA_SUCCESS;
}

static CUresult graph_launch(CUgraphExec e, CUstream s) {
    if (e == NULL) return CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < e->count; i++) {
        struct CUfunc_st f = {.block_ns = e->nodes[i].block_ns};
        CUresult rc = launch(&f, e->nodes[i].blocks, s);
        if (rc != CUDA_SUCCESS) return rc;
    }
    return CUDA_SUCCESS;
}
API CUresult cuGraphLaunch(CUgraphExec e, CUstream s) { return graph_launch(e, s); }
API CUresult cuGraphLaunch_ptsz(CUgraphExec e, CUstream s) { return graph_launch(e, s); }
API CUresult cuGraphExecDestroy(CUgraphExec e) {
    free(e);
    return CUDA_SUCCESS;
}
API CUresult cuGraphDestroy(CUgraph g) {
    free(g);
    return CUDA_SUCCESS;
}

/* ---- entry-point lookup ------------------------------------------------------------------ */

struct proc_entry {
    const char *name;  /* base name, as cudart asks for it */
    int since;         /* first CUDA version of this ABI */
    void *fn;          /* legacy / default-stream entry point */
    void *fn_ptsz;     /* per-thread-default-stream entry point, or NULL */
};

#define E(name, since, fn) {name, since, (void *)(fn), NULL}
#define P(name, since, fn) {name, since, (void *)(fn), (void *)(fn##_ptsz)}

static const struct proc_entry g_procs[] = {
    E("cuInit", 2000, cuInit),
    E("cuDriverGetVersion", 2020, cuDriverGetVersion),
    E("cuDeviceGet", 2000, cuDeviceGet),
    E("cuDeviceGetCount", 2000, cuDeviceGetCount),
    E("cuDeviceGetName", 2000, cuDeviceGetName),
    E("cuDeviceGetUuid", 9020, cuDeviceGetUuid),
    E("cuDeviceTotalMem", 3020, cuDeviceTotalMem_v2),
    E("cuDeviceGetAttribute", 2000, cuDeviceGetAttribute),
    E("cuGetErrorString", 6000, cuGetErrorString),
    E("cuGetErrorName", 6000, cuGetErrorName),
    E("cuCtxCreate", 3020, cuCtxCreate_v2),
    E("cuCtxDestroy", 4000, cuCtxDestroy_v2),
    E("cuCtxGetCurrent", 4000, cuCtxGetCurrent),
    E("cuCtxSetCurrent", 4000, cuCtxSetCurrent),
    E("cuCtxPushCurrent", 4000, cuCtxPushCurrent_v2),
    E("cuCtxPopCurrent", 4000, cuCtxPopCurrent_v2),
    E("cuCtxGetDevice", 2000, cuCtxGetDevice),
    E("cuCtxSynchronize", 2000, cuCtxSynchronize),
    E("cuDevicePrimaryCtxRetain", 7000, cuDevicePrimaryCtxRetain),
    E("cuDevicePrimaryCtxRelease", 11000, cuDevicePrimaryCtxRelease_v2),
    E("cuMemGetInfo", 3020, cuMemGetInfo_v2),
    E("cuMemAlloc", 3020, cuMemAlloc_v2),
    E("cuMemAllocPitch", 3020, cuMemAllocPitch_v2),
    E("cuMemAllocManaged", 6000, cuMemAllocManaged),
    E("cuMemFree", 3020, cuMemFree_v2),
    P("cuMemAllocAsync", 11020, cuMemAllocAsync),
    P("cuMemAllocFromPoolAsync", 11020, cuMemAllocFromPoolAsync),
    P("cuMemFreeAsync", 11020, cuMemFreeAsync),
    E("cuMemCreate", 10020, cuMemCreate),
    E("cuMemRelease", 10020, cuMemRelease),
    E("cuArrayCreate", 3020, cuArrayCreate_v2),
    E("cuArray3DCreate", 3020, cuArray3DCreate_v2),
    E("cuArrayDestroy", 2000, cuArrayDestroy),
    E("cuMipmappedArrayCreate", 5000, cuMipmappedArrayCreate),
    E("cuMipmappedArrayDestroy", 5000, cuMipmappedArrayDestroy),
    E("cuMemAllocHost", 3020, cuMemAllocHost_v2),
    E("cuMemFreeHost", 2000, cuMemFreeHost),
    E("cuMemcpy", 4000, cuMemcpy),
    E("cuMemcpyHtoD", 3020, cuMemcpyHtoD_v2),
    E("cuMemcpyDtoH", 3020, cuMemcpyDtoH_v2),
    E("cuMemcpyDtoD", 3020, cuMemcpyDtoD_v2),
    E("cuMemsetD8", 3020, cuMemsetD8_v2),
    E("cuMemsetD32", 3020, cuMemsetD32_v2),
    E("cuModuleLoadData", 2000, cuModuleLoadData),
    E("cuModuleGetFunction", 2000, cuModuleGetFunction),
    E("cuModuleUnload", 2000, cuModuleUnload),
    E("cuStreamCreate", 2000, cuStreamCreate),
    E("cuStreamDestroy", 4000, cuStreamDestroy_v2),
    P("cuStreamSynchronize", 2000, cuStreamSynchronize),
    P("cuLaunchKernel", 4000, cuLaunchKernel),
    P("cuLaunchKernelEx", 11060, cuLaunchKernelEx),
    P("cuLaunchCooperativeKernel", 9000, cuLaunchCooperativeKernel),
    E("cuGraphCreate", 10000, cuGraphCreate),
    E("cuGraphAddKernelNode", 12000, cuGraphAddKernelNode_v2),
    E("cuGraphInstantiateWithFlags", 11040, cuGraphInstantiateWithFlags),
    P("cuGraphLaunch", 10000, cuGraphLaunch),
    E("cuGraphExecDestroy", 10000, cuGraphExecDestroy),
    E("cuGraphDestroy", 10000, cuGraphDestroy),
    E("cuGetProcAddress", 11030, cuGetProcAddress),
    E("cuGetProcAddress", 12000, cuGetProcAddress_v2),
};

static CUresult lookup(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                       CUdriverProcAddressQueryResult *status) {
    if (symbol == NULL || pfn == NULL) return CUDA_ERROR_INVALID_VALUE;
    const struct proc_entry *best = NULL;
    int known = 0;
    for (size_t i = 0; i < sizeof g_procs / sizeof g_procs[0]; i++) {
        const struct proc_entry *e = &g_procs[i];
        if (strcmp(e->name, symbol) != 0) continue;
        known = 1;
        if (e->since <= cudaVersion && (best == NULL || e->since > best->since)) best = e;
    }
    *pfn = NULL;
    if (best == NULL) {
        if (status) *status = known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && best->fn_ptsz ? best->fn_ptsz : best->fn;
    if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
}

API CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags) {
    return lookup(symbol, pfn, cudaVersion, flags, NULL);
}

API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                 CUdriverProcAddressQueryResult *symbolStatus) {
    return lookup(symbol, pfn, cudaVersion, flags, symbolStatus);
}
