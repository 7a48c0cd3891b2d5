/*
 * fake_nvml.c -- Stretto's mock NVML (libnvidia-ml.so.1) for tests and GPU-less clusters.
 *
 * Reads the same configuration as the fake CUDA driver (fakegpu.h): GPU count, names, memory.
 * Utilization is computed from the simulated GPU timeline the fake driver's kernels fill, so
 * nvmlDeviceGetUtilizationRates and nvmlDeviceGetProcessUtilization reflect real (virtual) busy
 * time; memory comes from the same shared per-device ledger the fake driver charges.
 * Unmodified pynvml loads it (it calls nvmlInitWithFlags).
 *
 * Extension for tests: stretto_mock_busy_ns(gpu, pid, t0_ns, t1_ns) and stretto_mock_now_ns()
 * give exact busy time over any CLOCK_MONOTONIC interval.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakegpu.h"

#define API STRETTO_EXPORT

typedef enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

struct nvmlDevice_st {
    int index;
};
typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;

typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

static struct nvmlDevice_st g_devices[FG_MAX_GPUS];
static int g_init_count;

static nvmlReturn_t ready(void) {
    return __atomic_load_n(&g_init_count, __ATOMIC_ACQUIRE) > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

static nvmlReturn_t device_index(nvmlDevice_t d, int *index) {
    nvmlReturn_t rc = ready();
    if (rc != NVML_SUCCESS) return rc;
    if (d == NULL || d < g_devices || d >= g_devices + fg_config()->gpu_count) return NVML_ERROR_INVALID_ARGUMENT;
    *index = d->index;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    const char *fail = getenv("STRETTO_FAKE_NVML_FAIL_INIT");
    if (fail && *fail) return (nvmlReturn_t)atoi(fail);
    for (int i = 0; i < FG_MAX_GPUS; i++) g_devices[i].index = i;
    if (fg_timeline() == NULL) return NVML_ERROR_DRIVER_NOT_LOADED;
    __atomic_add_fetch(&g_init_count, 1, __ATOMIC_ACQ_REL);
    return NVML_SUCCESS;
}
API nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
API nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

API nvmlReturn_t nvmlShutdown(void) {
    nvmlReturn_t rc = ready();
    if (rc == NVML_SUCCESS) __atomic_sub_fetch(&g_init_count, 1, __ATOMIC_ACQ_REL);
    return rc;
}

API const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    default: return "Unknown Error";
    }
}

API nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (version == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    snprintf(version, length, "550.54.15-stretto-fake");
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    if (version == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    snprintf(version, length, "12.550.54.15");
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) {
    if (v == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *v = 12040;
    return NVML_SUCCESS;
}
API nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { return nvmlSystemGetCudaDriverVersion(v); }

API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    nvmlReturn_t rc = ready();
    if (rc != NVML_SUCCESS) return rc;
    if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *count = (unsigned)fg_config()->gpu_count;
    return NVML_SUCCESS;
}
API nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    nvmlReturn_t rc = ready();
    if (rc != NVML_SUCCESS) return rc;
    if (device == NULL || index >= (unsigned)fg_config()->gpu_count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &g_devices[index];
    return NVML_SUCCESS;
}
API nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int *index) {
    int i;
    nvmlReturn_t rc = device_index(d, &i);
    if (rc != NVML_SUCCESS) return rc;
    if (index == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *index = (unsigned)i;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length) {
    int i;
    nvmlReturn_t rc = device_index(d, &i);
    if (rc != NVML_SUCCESS) return rc;
    if (name == NULL || length == 0) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(fg_config()->gpus[i].name) >= length) return NVML_ERROR_INSUFFICIENT_SIZE;
    snprintf(name, length, "%s", fg_config()->gpus[i].name);
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length) {
    int i;
    nvmlReturn_t rc = device_index(d, &i);
    if (rc != NVML_SUCCESS) return rc;
    if (uuid == NULL || length < 41) return NVML_ERROR_INSUFFICIENT_SIZE;
    snprintf(uuid, length, "GPU-57a1e770-0000-4000-8000-%012d", i);
    return NVML_SUCCESS;
}

static void memory_of(int i, unsigned long long *total, unsigned long long *used) {
    *total = fg_config()->gpus[i].memory;
    *used = fg_mem_used(i);
    if (*used > *total) *used = *total;
}

API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    int i;
    nvmlReturn_t rc = device_index(d, &i);
    if (rc != NVML_SUCCESS) return rc;
    if (m == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    memory_of(i, &m->total, &m->used);
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
    int i;
    nvmlReturn_t rc = device_index(d, &i);
    if (rc != NVML_SUCCESS) return rc;
    if (m == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    memory_of(i, &m->total, &m->used);
    m->reserved = 0;
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

static unsigned percent(uint64_t busy, uint64_t window) {
    if (window == 0) return 0;
    uint64_t p = (busy * 100 + window / 2) / window;
    return p > 100 ? 100 : (unsigned)p;
}

API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
    int i;
    nvmlReturn_t rc = device_index(d, &i);
    if (rc != NVML_SUCCESS) return rc;
    if (u == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    uint64_t now = stretto_monotonic_ns(), window = fg_config()->nvml_window_ns;
    uint64_t t0 = now > window ? now - window : 0;
    u->gpu = percent(fg_busy_ns(i, 0, t0, now), now - t0);
    u->memory = u->gpu / 3;
    return NVML_SUCCESS;
}

/* One sample per process busy since lastSeenTimeStamp (µs, CLOCK_MONOTONIC; 0 = one window). */
API nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d, nvmlProcessUtilizationSample_t *samples,
                                                 unsigned int *count, unsigned long long lastSeenTimeStamp) {
    int i;
    nvmlReturn_t rc = device_index(d, &i);
    if (rc != NVML_SUCCESS) return rc;
    if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    uint64_t now = stretto_monotonic_ns(), window = fg_config()->nvml_window_ns;
    uint64_t t0 = lastSeenTimeStamp ? lastSeenTimeStamp * 1000ull : (now > window ? now - window : 0);
    if (t0 + window < now) t0 = now - window; /* NVML keeps a bounded history */
    uint32_t pids[FG_PIDS];
    uint64_t busy[FG_PIDS];
    int n = t0 < now ? fg_busy_by_pid(i, t0, now, pids, busy, FG_PIDS) : 0;
    if (n == 0) {
        *count = 0;
        return NVML_ERROR_NOT_FOUND;
    }
    if (samples == NULL || *count < (unsigned)n) {
        *count = (unsigned)n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (int k = 0; k < n; k++) {
        samples[k].pid = pids[k];
        samples[k].timeStamp = now / 1000ull;
        samples[k].smUtil = percent(busy[k], now - t0);
        samples[k].memUtil = samples[k].smUtil / 3;
        samples[k].encUtil = 0;
        samples[k].decUtil = 0;
    }
    *count = (unsigned)n;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count, nvmlProcessInfo_t *infos) {
    int i;
    nvmlReturn_t rc = device_index(d, &i);
    if (rc != NVML_SUCCESS) return rc;
    if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    struct fg_timeline *t = fg_timeline();
    struct fg_gpu_state *g = &t->gpus[i];
    nvmlProcessInfo_t found[FG_PIDS];
    unsigned n = 0;
    fg_mem_used(i); /* reaps exited processes */
    fg_lock(g);
    for (int k = 0; k < FG_PIDS; k++) {
        if (g->pids[k].pid == 0) continue;
        found[n].pid = g->pids[k].pid;
        found[n].usedGpuMemory = g->pids[k].bytes;
        found[n].gpuInstanceId = 0xFFFFFFFFu;
        found[n].computeInstanceId = 0xFFFFFFFFu;
        n++;
    }
    fg_unlock(g);
    if (n == 0) {
        *count = 0;
        return NVML_SUCCESS;
    }
    if (infos == NULL || *count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    memcpy(infos, found, n * sizeof found[0]);
    *count = n;
    return NVML_SUCCESS;
}

API uint64_t stretto_mock_now_ns(void) { return stretto_monotonic_ns(); }

API uint64_t stretto_mock_busy_ns(unsigned gpu, unsigned pid, uint64_t t0_ns, uint64_t t1_ns) {
    return fg_busy_ns((int)gpu, pid, t0_ns, t1_ns);
}
