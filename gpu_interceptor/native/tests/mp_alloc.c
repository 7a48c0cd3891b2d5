/*
 * mp_alloc.c -- N processes of one container race to allocate until the cap refuses them.
 *   mp_alloc NPROC CHUNK_MIB
 * Children start together (pipe barrier), allocate CHUNK_MIB blocks until the first error, report
 * what they hold, and keep it until every child has reported, so the sum is what was live at
 * once. Prints {"total": bytes, "errors": [...], "per_process": [...]}.
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 16;
    size_t chunk = (size_t)((argc > 2 ? atof(argv[2]) : 8.0) * (1 << 20));
    int go[2], done[2], report[2];
    if (pipe(go) || pipe(done) || pipe(report)) return 1;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            close(go[1]);
            close(done[1]);
            CUdevice dev;
            CUcontext ctx;
            long long line[2] = {0, 0};
            if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
                cuCtxCreate(&ctx, 0, dev) != CUDA_SUCCESS) {
                line[1] = -1;
            } else {
                char c;
                if (read(go[0], &c, 1) != 1) _exit(1);
                for (;;) {
                    CUdeviceptr p;
                    CUresult rc = cuMemAlloc(&p, chunk);
                    if (rc != CUDA_SUCCESS) {
                        line[1] = rc;
                        break;
                    }
                    line[0] += (long long)chunk;
                }
            }
            if (write(report[1], line, sizeof line) != sizeof line) _exit(1);
            char c;
            while (read(done[0], &c, 1) > 0) {
            }
            _exit(0);
        }
    }
    close(go[0]);
    close(done[0]);
    close(report[1]);
    usleep(200000); /* let every child finish cuInit, then release them at once */
    char start[256] = {0};
    if (write(go[1], start, (size_t)n) != n) return 1;
    long long total = 0, lines[256][2];
    for (int i = 0; i < n; i++) {
        if (read(report[0], lines[i], sizeof lines[i]) != sizeof lines[i]) return 1;
        total += lines[i][0];
    }
    close(done[1]);
    while (wait(NULL) > 0) {
    }
    printf("{\"total\": %lld, \"errors\": [", total);
    for (int i = 0; i < n; i++) printf("%s%lld", i ? ", " : "", lines[i][1]);
    printf("], \"per_process\": [");
    for (int i = 0; i < n; i++) printf("%s%lld", i ? ", " : "", lines[i][0]);
    printf("]}\n");
    return 0;
}
