/*
 * memory.c -- wrappers for every allocating driver call and its free.
 *
 * Pattern: reserve in the ledger (CUDA_ERROR_OUT_OF_MEMORY if that would pass the cap), call the
 * driver, undo the reservation if the driver failed, else record (kind, handle) -> (bytes, device)
 * so the matching free returns exactly what was charged. Counted: cuMemAlloc, cuMemAllocPitch (the
 * pitch the driver chose), cuMemAllocManaged (charged to the current device), cuMemAllocAsync and
 * cuMemAllocFromPoolAsync (charged at the call, credited at cuMemFreeAsync), cuMemCreate with a
 * device location (others pass through untouched), arrays and mipmapped arrays (element size x
 * extent). Host allocations are not device memory and are not charged.
 * cuMemGetInfo / cuDeviceTotalMem report min(cap, physical) as the total.
 */
#define _GNU_SOURCE
#include "shim.h"

#define GUARD(fn)                                                  \
    CUresult guard_rc = shim_ready();                              \
    if (guard_rc != CUDA_SUCCESS) return guard_rc;                 \
    if (g_real.fn == NULL) return CUDA_ERROR_NOT_FOUND;            \
    shim_ensure_poller()

static int current_device(void) {
    CUdevice dev = 0;
    if (g_real.cuCtxGetDevice == NULL || g_real.cuCtxGetDevice(&dev) != CUDA_SUCCESS) return 0;
    return dev;
}

static int ledger_index(int dev) { return dev < 0 ? 0 : dev >= STRETTO_MAX_DEVICES ? STRETTO_MAX_DEVICES - 1 : dev; }

static uint64_t cap_of(int dev) {
    return g_ledger ? __atomic_load_n(&g_ledger->mem_limit[ledger_index(dev)], __ATOMIC_ACQUIRE) : 0;
}

static uint64_t used_of(int dev) {
    return g_ledger ? __atomic_load_n(&g_ledger->mem_used[ledger_index(dev)], __ATOMIC_ACQUIRE) : 0;
}

/* Reserve, call, undo or record: the shape of every allocation wrapper. */
#define ALLOCATE(kind, dev, bytes, call, key_expr)                   \
    do {                                                             \
        if (ledger_reserve((dev), (bytes)) != 0) return CUDA_ERROR_OUT_OF_MEMORY; \
        CUresult alloc_rc = (call);                                  \
        if (alloc_rc != CUDA_SUCCESS) {                              \
            ledger_release((dev), (bytes));                          \
            return alloc_rc;                                         \
        }                                                            \
        track_put((kind), (uint64_t)(key_expr), (bytes), (dev));     \
        return CUDA_SUCCESS;                                         \
    } while (0)

static CUresult release_tracked(int kind, uint64_t key, CUresult rc) {
    uint64_t bytes;
    int dev;
    if (rc == CUDA_SUCCESS && track_take(kind, key, &bytes, &dev)) ledger_release(dev, bytes);
    return rc;
}

STRETTO_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
    GUARD(cuMemAlloc_v2);
    int dev = current_device();
    if (dptr == NULL || bytesize == 0) return g_real.cuMemAlloc_v2(dptr, bytesize);
    ALLOCATE(TRACK_PTR, dev, bytesize, g_real.cuMemAlloc_v2(dptr, bytesize), *dptr);
}

STRETTO_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags) {
    GUARD(cuMemAllocManaged);
    int dev = current_device();
    if (dptr == NULL || bytesize == 0) return g_real.cuMemAllocManaged(dptr, bytesize, flags);
    ALLOCATE(TRACK_PTR, dev, bytesize, g_real.cuMemAllocManaged(dptr, bytesize, flags), *dptr);
}

STRETTO_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t width, size_t height,
                                           unsigned int elem) {
    GUARD(cuMemAllocPitch_v2);
    if (dptr == NULL || pPitch == NULL || width == 0 || height == 0)
        return g_real.cuMemAllocPitch_v2(dptr, pPitch, width, height, elem);
    int dev = current_device();
    /* Reserve for the widest pitch a driver uses, then settle on the pitch it returned. */
    uint64_t estimate = (uint64_t)((width + 511) / 512 * 512) * height;
    if (ledger_reserve(dev, estimate) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = g_real.cuMemAllocPitch_v2(dptr, pPitch, width, height, elem);
    if (rc != CUDA_SUCCESS) {
        ledger_release(dev, estimate);
        return rc;
    }
    uint64_t actual = (uint64_t)*pPitch * height;
    if (actual < estimate) {
        ledger_release(dev, estimate - actual);
    } else if (actual > estimate && ledger_reserve(dev, actual - estimate) != 0) {
        g_real.cuMemFree_v2(*dptr);
        ledger_release(dev, estimate);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    track_put(TRACK_PTR, *dptr, actual, dev);
    return CUDA_SUCCESS;
}

STRETTO_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
    GUARD(cuMemFree_v2);
    return release_tracked(TRACK_PTR, dptr, g_real.cuMemFree_v2(dptr));
}

STRETTO_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream s) {
    GUARD(cuMemAllocAsync);
    int dev = current_device();
    if (dptr == NULL || bytesize == 0) return g_real.cuMemAllocAsync(dptr, bytesize, s);
    ALLOCATE(TRACK_PTR, dev, bytesize, g_real.cuMemAllocAsync(dptr, bytesize, s), *dptr);
}

STRETTO_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream s) {
    GUARD(cuMemAllocAsync_ptsz);
    int dev = current_device();
    if (dptr == NULL || bytesize == 0) return g_real.cuMemAllocAsync_ptsz(dptr, bytesize, s);
    ALLOCATE(TRACK_PTR, dev, bytesize, g_real.cuMemAllocAsync_ptsz(dptr, bytesize, s), *dptr);
}

STRETTO_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream s) {
    GUARD(cuMemAllocFromPoolAsync);
    int dev = current_device();
    if (dptr == NULL || bytesize == 0) return g_real.cuMemAllocFromPoolAsync(dptr, bytesize, pool, s);
    ALLOCATE(TRACK_PTR, dev, bytesize, g_real.cuMemAllocFromPoolAsync(dptr, bytesize, pool, s), *dptr);
}

STRETTO_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                                     CUstream s) {
    GUARD(cuMemAllocFromPoolAsync_ptsz);
    int dev = current_device();
    if (dptr == NULL || bytesize == 0) return g_real.cuMemAllocFromPoolAsync_ptsz(dptr, bytesize, pool, s);
    ALLOCATE(TRACK_PTR, dev, bytesize, g_real.cuMemAllocFromPoolAsync_ptsz(dptr, bytesize, pool, s), *dptr);
}

STRETTO_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream s) {
    GUARD(cuMemFreeAsync);
    return release_tracked(TRACK_PTR, dptr, g_real.cuMemFreeAsync(dptr, s));
}

STRETTO_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream s) {
    GUARD(cuMemFreeAsync_ptsz);
    return release_tracked(TRACK_PTR, dptr, g_real.cuMemFreeAsync_ptsz(dptr, s));
}

STRETTO_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                    const CUmemAllocationProp *prop, unsigned long long flags) {
    GUARD(cuMemCreate);
    if (handle == NULL || prop == NULL || size == 0 || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return g_real.cuMemCreate(handle, size, prop, flags); /* host / NUMA memory: not ours to count */
    int dev = prop->location.id;
    ALLOCATE(TRACK_VMM, dev, size, g_real.cuMemCreate(handle, size, prop, flags), *handle);
}

STRETTO_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
    GUARD(cuMemRelease);
    return release_tracked(TRACK_VMM, handle, g_real.cuMemRelease(handle));
}

static uint64_t element_bytes(CUarray_format f) {
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: return 4;
    default: return 16; /* formats we do not model: err on the side of the cap */
    }
}

static uint64_t extent_bytes(uint64_t w, uint64_t h, uint64_t d, CUarray_format f, unsigned ch) {
    return w * (h ? h : 1) * (d ? d : 1) * element_bytes(f) * (ch ? ch : 1);
}

STRETTO_EXPORT CUresult cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *d) {
    GUARD(cuArrayCreate_v2);
    if (pHandle == NULL || d == NULL) return g_real.cuArrayCreate_v2(pHandle, d);
    int dev = current_device();
    uint64_t bytes = extent_bytes(d->Width, d->Height, 1, d->Format, d->NumChannels);
    ALLOCATE(TRACK_ARRAY, dev, bytes, g_real.cuArrayCreate_v2(pHandle, d), (uintptr_t)*pHandle);
}

STRETTO_EXPORT CUresult cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d) {
    GUARD(cuArray3DCreate_v2);
    if (pHandle == NULL || d == NULL) return g_real.cuArray3DCreate_v2(pHandle, d);
    int dev = current_device();
    uint64_t bytes = extent_bytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels);
    ALLOCATE(TRACK_ARRAY, dev, bytes, g_real.cuArray3DCreate_v2(pHandle, d), (uintptr_t)*pHandle);
}

STRETTO_EXPORT CUresult cuArrayDestroy(CUarray a) {
    GUARD(cuArrayDestroy);
    return release_tracked(TRACK_ARRAY, (uintptr_t)a, g_real.cuArrayDestroy(a));
}

STRETTO_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d,
                                               unsigned int levels) {
    GUARD(cuMipmappedArrayCreate);
    if (pHandle == NULL || d == NULL || levels == 0) return g_real.cuMipmappedArrayCreate(pHandle, d, levels);
    int dev = current_device();
    uint64_t bytes = 0, w = d->Width, h = d->Height, z = d->Depth;
    for (unsigned i = 0; i < levels; i++) {
        bytes += extent_bytes(w, h, z, d->Format, d->NumChannels);
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : h;
        z = z > 1 ? z / 2 : z;
    }
    ALLOCATE(TRACK_ARRAY, dev, bytes, g_real.cuMipmappedArrayCreate(pHandle, d, levels), (uintptr_t)*pHandle);
}

STRETTO_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray a) {
    GUARD(cuMipmappedArrayDestroy);
    return release_tracked(TRACK_ARRAY, (uintptr_t)a, g_real.cuMipmappedArrayDestroy(a));
}

STRETTO_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
    GUARD(cuMemGetInfo_v2);
    CUresult rc = g_real.cuMemGetInfo_v2(free_bytes, total);
    if (rc != CUDA_SUCCESS || free_bytes == NULL || total == NULL) return rc;
    int dev = current_device();
    uint64_t cap = cap_of(dev);
    if (cap == 0) return rc;
    uint64_t t = cap < *total ? cap : *total, used = used_of(dev);
    uint64_t f = used < t ? t - used : 0;
    *total = (size_t)t;
    *free_bytes = (size_t)(f < *free_bytes ? f : *free_bytes);
    return rc;
}

STRETTO_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
    GUARD(cuDeviceTotalMem_v2);
    CUresult rc = g_real.cuDeviceTotalMem_v2(bytes, dev);
    uint64_t cap = cap_of(dev);
    if (rc == CUDA_SUCCESS && bytes != NULL && cap != 0 && cap < *bytes) *bytes = (size_t)cap;
    return rc;
}
