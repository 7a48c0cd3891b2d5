/*
 * probe.c -- allocates device memory through one access path and reports what the driver allowed.
 *
 * Built twice: probe_linked calls the driver it is linked against (-lcuda); probe_dl reaches it
 * the ways cudart and frameworks do: --path dlsym (dlopen RTLD_LOCAL + dlsym of "_v2" names) or
 * --path gpa / gpa11 (dlsym("cuGetProcAddress_v2" / "cuGetProcAddress"), then every base name
 * through it with --cuda-version and --ptds).
 *
 *   probe --api alloc|pitch|managed|async|create|array|array3d|mipmap [--chunk-mib N] [--max-mib M]
 *         [--free-at-end] [--hold] [--info]
 * Prints one JSON line: allocated bytes, first error, cuMemGetInfo before/after, total memory.
 * --hold: after allocating, prints "held" and sleeps until killed (reaping test).
 */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef CUresult (*gpa_v2_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
typedef CUresult (*gpa_v1_fn)(const char *, void **, int, cuuint64_t);

static struct {
    CUresult (*init)(unsigned);
    CUresult (*device_get)(CUdevice *, int);
    CUresult (*ctx_create)(CUcontext *, unsigned, CUdevice);
    CUresult (*mem_alloc)(CUdeviceptr *, size_t);
    CUresult (*mem_free)(CUdeviceptr);
    CUresult (*mem_get_info)(size_t *, size_t *);
    CUresult (*total_mem)(size_t *, CUdevice);
    CUresult (*alloc_pitch)(CUdeviceptr *, size_t *, size_t, size_t, unsigned);
    CUresult (*alloc_managed)(CUdeviceptr *, size_t, unsigned);
    CUresult (*alloc_async)(CUdeviceptr *, size_t, CUstream);
    CUresult (*free_async)(CUdeviceptr, CUstream);
    CUresult (*mem_create)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long);
    CUresult (*mem_release)(CUmemGenericAllocationHandle);
    CUresult (*array_create)(CUarray *, const CUDA_ARRAY_DESCRIPTOR *);
    CUresult (*array3d_create)(CUarray *, const CUDA_ARRAY3D_DESCRIPTOR *);
    CUresult (*array_destroy)(CUarray);
    CUresult (*mipmap_create)(CUmipmappedArray *, const CUDA_ARRAY3D_DESCRIPTOR *, unsigned);
} cu;

static const char *path = "linked";
static int cuda_version = 12040, ptds = 0;

#ifndef PROBE_LINKED
static void *lib;
static gpa_v2_fn gpa2;
static gpa_v1_fn gpa1;

static void *resolve(const char *base, const char *versioned) {
    void *p = NULL;
    if (strcmp(path, "dlsym") == 0) return dlsym(lib, versioned);
    cuuint64_t flags = ptds ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_DEFAULT;
    CUdriverProcAddressQueryResult st;
    CUresult rc = gpa2 ? gpa2(base, &p, cuda_version, flags, &st) : gpa1(base, &p, cuda_version, flags);
    return rc == CUDA_SUCCESS ? p : NULL;
}
#endif

static int load(void) {
#ifdef PROBE_LINKED
    cu.init = cuInit;
    cu.device_get = cuDeviceGet;
    cu.ctx_create = cuCtxCreate;
    cu.mem_alloc = cuMemAlloc;
    cu.mem_free = cuMemFree;
    cu.mem_get_info = cuMemGetInfo;
    cu.total_mem = cuDeviceTotalMem;
    cu.alloc_pitch = cuMemAllocPitch;
    cu.alloc_managed = cuMemAllocManaged;
    cu.alloc_async = cuMemAllocAsync;
    cu.free_async = cuMemFreeAsync;
    cu.mem_create = cuMemCreate;
    cu.mem_release = cuMemRelease;
    cu.array_create = cuArrayCreate;
    cu.array3d_create = cuArray3DCreate;
    cu.array_destroy = cuArrayDestroy;
    cu.mipmap_create = cuMipmappedArrayCreate;
    return 0;
#else
    lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return -1;
    }
    if (strcmp(path, "gpa") == 0) {
        gpa2 = (gpa_v2_fn)dlsym(lib, "cuGetProcAddress_v2");
        /* cudart then asks the driver for cuGetProcAddress itself and uses that from then on. */
        void *self = NULL;
        CUdriverProcAddressQueryResult st;
        if (gpa2 == NULL || gpa2("cuGetProcAddress", &self, 12000, 0, &st) != CUDA_SUCCESS || self == NULL) return -1;
        gpa2 = (gpa_v2_fn)self;
    } else if (strcmp(path, "gpa11") == 0) {
        gpa1 = (gpa_v1_fn)dlsym(lib, "cuGetProcAddress");
        if (gpa1 == NULL) return -1;
        if (cuda_version >= 12000) cuda_version = 11080;
    }
#define R(field, base, versioned) *(void **)&cu.field = resolve(base, versioned)
    R(init, "cuInit", "cuInit");
    R(device_get, "cuDeviceGet", "cuDeviceGet");
    R(ctx_create, "cuCtxCreate", "cuCtxCreate_v2");
    R(mem_alloc, "cuMemAlloc", "cuMemAlloc_v2");
    R(mem_free, "cuMemFree", "cuMemFree_v2");
    R(mem_get_info, "cuMemGetInfo", "cuMemGetInfo_v2");
    R(total_mem, "cuDeviceTotalMem", "cuDeviceTotalMem_v2");
    R(alloc_pitch, "cuMemAllocPitch", "cuMemAllocPitch_v2");
    R(alloc_managed, "cuMemAllocManaged", "cuMemAllocManaged");
    R(alloc_async, "cuMemAllocAsync", ptds ? "cuMemAllocAsync_ptsz" : "cuMemAllocAsync");
    R(free_async, "cuMemFreeAsync", ptds ? "cuMemFreeAsync_ptsz" : "cuMemFreeAsync");
    R(mem_create, "cuMemCreate", "cuMemCreate");
    R(mem_release, "cuMemRelease", "cuMemRelease");
    R(array_create, "cuArrayCreate", "cuArrayCreate_v2");
    R(array3d_create, "cuArray3DCreate", "cuArray3DCreate_v2");
    R(array_destroy, "cuArrayDestroy", "cuArrayDestroy");
    R(mipmap_create, "cuMipmappedArrayCreate", "cuMipmappedArrayCreate");
#undef R
    return cu.init && cu.mem_alloc ? 0 : -1;
#endif
}

int main(int argc, char **argv) {
    const char *api = "alloc";
    size_t chunk = 64ull << 20, max = 1ull << 40;
    int hold = 0, free_at_end = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--api") && i + 1 < argc) api = argv[++i];
        else if (!strcmp(argv[i], "--path") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--cuda-version") && i + 1 < argc) cuda_version = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ptds")) ptds = 1;
        else if (!strcmp(argv[i], "--chunk-mib") && i + 1 < argc) chunk = (size_t)(atof(argv[++i]) * (1 << 20));
        else if (!strcmp(argv[i], "--max-mib") && i + 1 < argc) max = (size_t)(atof(argv[++i]) * (1 << 20));
        else if (!strcmp(argv[i], "--hold")) hold = 1;
        else if (!strcmp(argv[i], "--free-at-end")) free_at_end = 1;
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (load() != 0) {
        printf("{\"error\": \"cannot resolve the driver through path %s\"}\n", path);
        return 3;
    }
    CUresult rc = cu.init(0);
    if (rc != CUDA_SUCCESS) {
        printf("{\"init\": %d}\n", rc);
        return 4;
    }
    CUdevice dev;
    CUcontext ctx;
    cu.device_get(&dev, 0);
    if ((rc = cu.ctx_create(&ctx, 0, dev)) != CUDA_SUCCESS) {
        printf("{\"ctx\": %d}\n", rc);
        return 5;
    }
    size_t free0 = 0, total0 = 0, free1 = 0, total1 = 0, devtotal = 0;
    cu.mem_get_info(&free0, &total0);
    if (cu.total_mem) cu.total_mem(&devtotal, dev);
    enum { MAXN = 65536 };
    static CUdeviceptr ptrs[MAXN];
    static CUmemGenericAllocationHandle handles[MAXN];
    static CUarray arrays[MAXN];
    size_t allocated = 0;
    int n = 0, first_error = 0;
    while (allocated + chunk <= max && n < MAXN) {
        CUresult r;
        if (!strcmp(api, "alloc")) {
            r = cu.mem_alloc(&ptrs[n], chunk);
        } else if (!strcmp(api, "pitch")) {
            size_t pitch = 0;
            r = cu.alloc_pitch(&ptrs[n], &pitch, 1000, chunk / 1024, 4); /* driver pitch 1024 */
        } else if (!strcmp(api, "managed")) {
            r = cu.alloc_managed(&ptrs[n], chunk, CU_MEM_ATTACH_GLOBAL);
        } else if (!strcmp(api, "async")) {
            r = cu.alloc_async(&ptrs[n], chunk, NULL);
        } else if (!strcmp(api, "create")) {
            CUmemAllocationProp prop;
            memset(&prop, 0, sizeof prop);
            prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
            prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
            prop.location.id = dev;
            r = cu.mem_create(&handles[n], chunk, &prop, 0);
        } else if (!strcmp(api, "array")) {
            CUDA_ARRAY_DESCRIPTOR d = {.Width = 1024, .Height = chunk / 4096, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
            r = cu.array_create(&arrays[n], &d);
        } else if (!strcmp(api, "array3d")) {
            CUDA_ARRAY3D_DESCRIPTOR d = {.Width = 256, .Height = 256, .Depth = chunk / (256 * 256 * 4),
                                         .Format = CU_AD_FORMAT_UNSIGNED_INT8, .NumChannels = 4, .Flags = 0};
            r = cu.array3d_create(&arrays[n], &d);
        } else if (!strcmp(api, "mipmap")) {
            CUDA_ARRAY3D_DESCRIPTOR d = {.Width = 1024, .Height = chunk / 4096, .Depth = 0,
                                         .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1, .Flags = 0};
            r = cu.mipmap_create((CUmipmappedArray *)&arrays[n], &d, 1);
        } else {
            fprintf(stderr, "unknown api %s\n", api);
            return 2;
        }
        if (r != CUDA_SUCCESS) {
            first_error = r;
            break;
        }
        allocated += chunk;
        n++;
    }
    cu.mem_get_info(&free1, &total1);
    printf("{\"path\": \"%s\", \"api\": \"%s\", \"allocated\": %zu, \"count\": %d, \"first_error\": %d, "
           "\"info_free_before\": %zu, \"info_total_before\": %zu, \"info_free_after\": %zu, "
           "\"info_total_after\": %zu, \"device_total\": %zu}\n",
           path, api, allocated, n, first_error, free0, total0, free1, total1, devtotal);
    fflush(stdout);
    if (free_at_end) {
        for (int i = 0; i < n; i++) {
            if (!strcmp(api, "create")) cu.mem_release(handles[i]);
            else if (!strncmp(api, "array", 5) || !strcmp(api, "mipmap")) cu.array_destroy(arrays[i]);
            else if (!strcmp(api, "async")) cu.free_async(ptrs[i], NULL);
            else cu.mem_free(ptrs[i]);
        }
        size_t free2 = 0, total2 = 0;
        cu.mem_get_info(&free2, &total2);
        /* After freeing everything, the full cap must be allocatable again, to the byte. */
        CUdeviceptr again = 0;
        CUresult again_rc = allocated ? cu.mem_alloc(&again, allocated) : CUDA_SUCCESS;
        printf("{\"freed\": %d, \"info_free_after_free\": %zu, \"realloc_all\": %d}\n", n, free2, again_rc);
        fflush(stdout);
    }
    if (hold) {
        printf("held\n");
        fflush(stdout);
        for (;;) pause();
    }
    return 0;
}
