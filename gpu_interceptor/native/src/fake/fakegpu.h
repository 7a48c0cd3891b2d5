/*
 * fakegpu.h -- the simulated GPUs shared by the fake CUDA driver and the mock NVML.
 *
 * Configuration comes from the file named by STRETTO_FAKE_GPU_CONFIG (see README.md):
 *
 *     gpu = Stretto Fake H100 80GB, 80Gi      # one line per GPU: name, memory
 *     timeline = /dev/shm/stretto-fakegpu-ci   # shared state file (created on first use)
 *     block_time_us = 50                       # simulated GPU time per thread block
 *     alloc_latency_us = 0                     # injected driver latency per allocation
 *     nvml_window_ms = 1000                    # NVML's utilization averaging window
 *
 * The timeline file holds, per GPU, a serial "engine": a kernel launched at time t occupies
 * [max(t, busy_until), +blocks * block_time) of virtual GPU time, tagged with the launching pid.
 * Synchronize sleeps until the engine reaches the end of the caller's last kernel, so busy time
 * does not depend on the host CPU being idle. NVML's utilization is computed from the same
 * segments. Device memory in use is counted per (GPU, pid) so killed processes are reaped.
 */
#ifndef STRETTO_FAKEGPU_H
#define STRETTO_FAKEGPU_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/common.h"

#define FG_MAX_GPUS 16
#define FG_RING 32768
#define FG_PIDS 64
#define FG_NAME_LEN 96

struct fg_gpu_config {
    char name[FG_NAME_LEN];
    uint64_t memory;
};

struct fg_config {
    int gpu_count;
    struct fg_gpu_config gpus[FG_MAX_GPUS];
    char timeline[512];
    uint64_t block_time_ns;
    uint64_t alloc_latency_ns;
    uint64_t nvml_window_ns;
};

struct fg_segment {
    uint64_t start_ns;
    uint64_t end_ns;
    uint32_t pid;
    uint32_t blocks;
};

struct fg_pid_mem {
    uint32_t pid;
    uint32_t pad;
    uint64_t start_time;
    uint64_t bytes;
};

struct fg_gpu_state {
    pthread_mutex_t lock; /* robust, process-shared */
    uint64_t busy_until_ns;
    uint64_t seg_count; /* segments ever appended; newest is seg_count - 1 */
    uint64_t mem_used;
    uint64_t mem_peak;
    uint64_t kernels;
    struct fg_pid_mem pids[FG_PIDS];
    struct fg_segment ring[FG_RING];
};

struct fg_timeline {
    uint32_t magic;
    uint32_t version;
    uint32_t gpu_count;
    uint32_t pad;
    struct fg_gpu_state gpus[FG_MAX_GPUS];
};

/* Loaded once per process; never NULL (defaults if no file). */
STRETTO_HIDDEN const struct fg_config *fg_config(void);
/* The shared timeline, mapped on first use; NULL if it cannot be created. */
STRETTO_HIDDEN struct fg_timeline *fg_timeline(void);
STRETTO_HIDDEN void fg_lock(struct fg_gpu_state *g);
STRETTO_HIDDEN void fg_unlock(struct fg_gpu_state *g);
/* Queues `busy_ns` of work for pid on gpu; returns the time it completes. */
STRETTO_HIDDEN uint64_t fg_enqueue(int gpu, uint32_t pid, uint64_t busy_ns, uint32_t blocks);
/* Busy nanoseconds of pid (0 = any) on gpu within [t0, t1). */
STRETTO_HIDDEN uint64_t fg_busy_ns(int gpu, uint32_t pid, uint64_t t0, uint64_t t1);
/* Lists pids with busy time in [t0, t1) and their busy ns; returns the count (<= max). */
STRETTO_HIDDEN int fg_busy_by_pid(int gpu, uint64_t t0, uint64_t t1, uint32_t *pids, uint64_t *busy, int max);
/* Device memory: charge (returns 0, or -1 if the device is full) and credit. */
STRETTO_HIDDEN int fg_mem_charge(int gpu, uint32_t pid, uint64_t bytes);
STRETTO_HIDDEN void fg_mem_credit(int gpu, uint32_t pid, uint64_t bytes);
STRETTO_HIDDEN uint64_t fg_mem_used(int gpu);

#endif
