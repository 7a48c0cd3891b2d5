/*
 * bench_shim.c -- per-call cost of the driver entry points the shim wraps, measured the way
 * cudart 12 calls them (pointers from cuGetProcAddress_v2), on one thread.
 *   bench_shim [--iters N] [--repeats R]
 * Run it with and without LD_PRELOAD=libstretto-cuda.so (bench/bench_shim.py does both) on the
 * fake driver with zero simulated kernel time. Prints JSON: median ns per call over R repeats.
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef CUresult (*gpa_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    long iters = 200000;
    int repeats = 9;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--iters")) iters = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeats")) repeats = atoi(argv[i + 1]);
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set);
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) return 1;
    gpa_fn gpa = (gpa_fn)dlsym(lib, "cuGetProcAddress_v2");
    CUdriverProcAddressQueryResult st;
    CUresult (*init)(unsigned);
    CUresult (*device_get)(CUdevice *, int);
    CUresult (*ctx_create)(CUcontext *, unsigned, CUdevice);
    CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                       void **, void **);
    CUresult (*alloc)(CUdeviceptr *, size_t);
    CUresult (*mfree)(CUdeviceptr);
    CUresult (*info)(size_t *, size_t *);
    CUresult (*sync)(void);
#define R(var, name) gpa(name, (void **)&var, 12040, 0, &st)
    R(init, "cuInit");
    R(device_get, "cuDeviceGet");
    R(ctx_create, "cuCtxCreate");
    R(launch, "cuLaunchKernel");
    R(alloc, "cuMemAlloc");
    R(mfree, "cuMemFree");
    R(info, "cuMemGetInfo");
    R(sync, "cuCtxSynchronize");
#undef R
    CUdevice dev;
    CUcontext ctx;
    if (init(0) != CUDA_SUCCESS || device_get(&dev, 0) != CUDA_SUCCESS || ctx_create(&ctx, 0, dev) != CUDA_SUCCESS) {
        printf("{\"error\": \"init\"}\n");
        return 1;
    }
    double *l = calloc((size_t)repeats, sizeof(double)), *a = calloc((size_t)repeats, sizeof(double)),
           *g = calloc((size_t)repeats, sizeof(double));
    for (int r = 0; r < repeats; r++) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++) launch(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL);
        l[r] = (now_ns() - t0) / (double)iters;
        sync();
        long n = iters / 4;
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            CUdeviceptr p;
            alloc(&p, 4096);
            mfree(p);
        }
        a[r] = (now_ns() - t0) / (double)n;
        size_t fr, tot;
        t0 = now_ns();
        for (long i = 0; i < n; i++) info(&fr, &tot);
        g[r] = (now_ns() - t0) / (double)n;
    }
    printf("{\"launch_ns\": %.2f, \"alloc_free_ns\": %.2f, \"mem_get_info_ns\": %.2f, \"repeats\": %d, "
           "\"iters\": %ld}\n", median(l, repeats), median(a, repeats), median(g, repeats), repeats, iters);
    return 0;
}
