/*
 * workload.c -- a training-step-like loop of kernel launches on the (fake) GPU.
 *   workload [--seconds S] [--grid G] [--block-us U] [--batch B] [--busy-until T] [--busy-from T]
 *            [--api launch|ex|coop|graph|ptsz] [--device D]
 * Launches batches of B kernels of G blocks (each block busy U us on the simulated GPU), then
 * synchronizes, for S seconds. Outside [busy-from, busy-until) it idles. Prints launches.
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                             unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                             unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define CHECK(call)                                                     \
    do {                                                                \
        CUresult rc_ = (call);                                          \
        if (rc_ != CUDA_SUCCESS) {                                      \
            fprintf(stderr, "%s failed: %d\n", #call, rc_);             \
            printf("{\"error\": %d}\n", rc_);                           \
            return 1;                                                   \
        }                                                               \
    } while (0)

int main(int argc, char **argv) {
    double seconds = 5, busy_until = 1e18, busy_from = 0, block_us = 50;
    unsigned grid = 32, batch = 8;
    int device = 0;
    const char *api = "launch";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--grid")) grid = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--block-us")) block_us = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--busy-until")) busy_until = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--busy-from")) busy_from = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--api")) api = argv[i + 1];
        else if (!strcmp(argv[i], "--device")) device = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    char name[64];
    snprintf(name, sizeof name, "kernel_%gus", block_us);
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, device));
    CHECK(cuCtxCreate(&ctx, 0, dev));
    CHECK(cuModuleLoadData(&mod, "fake image"));
    CHECK(cuModuleGetFunction(&fn, mod, name));
    CUgraphExec exec = NULL;
    if (!strcmp(api, "graph")) {
        CUgraph g;
        CHECK(cuGraphCreate(&g, 0));
        for (unsigned k = 0; k < batch; k++) {
            CUDA_KERNEL_NODE_PARAMS p;
            memset(&p, 0, sizeof p);
            p.func = fn;
            p.gridDimX = grid;
            p.gridDimY = p.gridDimZ = p.blockDimX = p.blockDimY = p.blockDimZ = 1;
            CHECK(cuGraphAddKernelNode(NULL, g, NULL, 0, &p));
        }
        CHECK(cuGraphInstantiateWithFlags(&exec, g, 0));
    }
    printf("started\n");
    fflush(stdout);
    double t0 = now_s();
    unsigned long long launches = 0;
    for (;;) {
        double t = now_s() - t0;
        if (t >= seconds) break;
        if (t < busy_from || t >= busy_until) {
            usleep(20000);
            continue;
        }
        if (exec != NULL) {
            CHECK(cuGraphLaunch(exec, NULL));
            launches += batch;
        } else {
            for (unsigned k = 0; k < batch; k++) {
                if (!strcmp(api, "ex")) {
                    CUlaunchConfig c;
                    memset(&c, 0, sizeof c);
                    c.gridDimX = grid;
                    c.gridDimY = c.gridDimZ = c.blockDimX = c.blockDimY = c.blockDimZ = 1;
                    CHECK(cuLaunchKernelEx(&c, fn, NULL, NULL));
                } else if (!strcmp(api, "coop")) {
                    CHECK(cuLaunchCooperativeKernel(fn, grid, 1, 1, 1, 1, 1, 0, NULL, NULL));
                } else if (!strcmp(api, "ptsz")) {
                    CHECK(cuLaunchKernel_ptsz(fn, grid, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
                } else {
                    CHECK(cuLaunchKernel(fn, grid, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
                }
                launches++;
            }
        }
        CHECK(cuCtxSynchronize());
    }
    printf("{\"launches\": %llu, \"seconds\": %.3f}\n", launches, now_s() - t0);
    return 0;
}
