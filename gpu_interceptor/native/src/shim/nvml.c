/*
 * nvml.c -- NVML as the shim sees it: memory queries report the container's cap, and the
 * standalone controller (runs without a daemon) measures utilization through it.
 *
 * In daemon mode the shim never calls NVML; the node daemon measures and sets the rate.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

STRETTO_HIDDEN void *nvml_hook_memory_info(void);
STRETTO_HIDDEN void *nvml_hook_memory_info_v2(void);

typedef struct {
    unsigned long long total, free, used;
} nvml_memory;
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvml_memory_v2;
typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvml_sample;

#define NVML_SUCCESS 0
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_INSUFFICIENT_SIZE 7

static struct {
    void *lib;
    int (*init)(unsigned int);
    int (*count)(unsigned int *);
    int (*handle)(unsigned int, void **);
    int (*index)(void *, unsigned int *);
    int (*mem)(void *, nvml_memory *);
    int (*mem_v2)(void *, nvml_memory_v2 *);
    int (*proc_util)(void *, nvml_sample *, unsigned int *, unsigned long long);
} g_nvml;
static pthread_once_t g_nvml_once = PTHREAD_ONCE_INIT;

static void load_nvml(void) {
    stretto_dlsym_bootstrap();
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (lib == NULL || stretto_real_dlsym == NULL) return;
    g_nvml.lib = lib;
#define LOAD(field, name) do { void *p = stretto_real_dlsym(lib, name); memcpy(&g_nvml.field, &p, sizeof p); } while (0)
    LOAD(init, "nvmlInitWithFlags");
    LOAD(count, "nvmlDeviceGetCount_v2");
    LOAD(handle, "nvmlDeviceGetHandleByIndex_v2");
    LOAD(index, "nvmlDeviceGetIndex");
    LOAD(mem, "nvmlDeviceGetMemoryInfo");
    LOAD(mem_v2, "nvmlDeviceGetMemoryInfo_v2");
    LOAD(proc_util, "nvmlDeviceGetProcessUtilization");
#undef LOAD
}

static int device_of(void *device) {
    unsigned int idx = 0;
    if (g_nvml.index == NULL || g_nvml.index(device, &idx) != NVML_SUCCESS) return 0;
    return idx < STRETTO_MAX_DEVICES ? (int)idx : STRETTO_MAX_DEVICES - 1;
}

static void clamp_memory(int dev, unsigned long long *total, unsigned long long *free_b,
                         unsigned long long *used) {
    if (shim_ready() != CUDA_SUCCESS || g_ledger == NULL) return;
    uint64_t cap = __atomic_load_n(&g_ledger->mem_limit[dev], __ATOMIC_ACQUIRE);
    if (cap == 0) return;
    uint64_t mine = __atomic_load_n(&g_ledger->mem_used[dev], __ATOMIC_ACQUIRE);
    uint64_t t = cap < *total ? cap : *total;
    *total = t;
    *used = mine < t ? mine : t;
    uint64_t f = t - *used;
    *free_b = f < *free_b ? f : *free_b;
}

STRETTO_EXPORT int nvmlDeviceGetMemoryInfo(void *device, nvml_memory *m) {
    pthread_once(&g_nvml_once, load_nvml);
    if (g_nvml.mem == NULL) return NVML_ERROR_FUNCTION_NOT_FOUND;
    int rc = g_nvml.mem(device, m);
    if (rc == NVML_SUCCESS && m != NULL) clamp_memory(device_of(device), &m->total, &m->free, &m->used);
    return rc;
}

STRETTO_EXPORT int nvmlDeviceGetMemoryInfo_v2(void *device, nvml_memory_v2 *m) {
    pthread_once(&g_nvml_once, load_nvml);
    if (g_nvml.mem_v2 == NULL) return NVML_ERROR_FUNCTION_NOT_FOUND;
    int rc = g_nvml.mem_v2(device, m);
    if (rc == NVML_SUCCESS && m != NULL) clamp_memory(device_of(device), &m->total, &m->free, &m->used);
    return rc;
}

void *nvml_hook_memory_info(void) { return (void *)nvmlDeviceGetMemoryInfo; }
void *nvml_hook_memory_info_v2(void) { return (void *)nvmlDeviceGetMemoryInfo_v2; }

/* ---- standalone controller ----------------------------------------------------------------
 * One process per container (the first to claim ledger->controller_pid) measures the
 * utilization of the container's processes (pids of the ledger's slots: same pid namespace
 * without Kubernetes) and steers the shared bucket's rate toward the cap:
 *     rate <- 0.5 * rate + 0.5 * observed_rate * cap / utilization
 * which converges in a few ticks whatever tokens cost in GPU time. Without NVML it keeps the
 * initial rate: limited, never unlimited. */

static uint64_t g_last_ts_us[STRETTO_MAX_DEVICES];
static uint64_t g_last_consumed, g_last_tick_ns;
static int g_nvml_ready = -1;

static int claim_controller(void) {
    struct stretto_ledger *l = g_ledger;
    uint32_t me = (uint32_t)getpid();
    uint32_t cur = __atomic_load_n(&l->controller_pid, __ATOMIC_ACQUIRE);
    if (cur == me) return 1;
    if (cur != 0 && stretto_process_alive((pid_t)cur, l->controller_start)) return 0;
    if (!__atomic_compare_exchange_n(&l->controller_pid, &cur, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return 0;
    l->controller_start = stretto_process_start_time((pid_t)me);
    return 1;
}

static int is_container_pid(uint32_t pid) {
    for (int i = 0; i < STRETTO_MAX_SLOTS; i++)
        if (__atomic_load_n(&g_ledger->slots[i].pid, __ATOMIC_ACQUIRE) == pid) return 1;
    return 0;
}

/* Highest utilization (percent) of this container's processes on any device since the last tick. */
static double measure_util(void) {
    unsigned int n = 0;
    if (g_nvml.count(&n) != NVML_SUCCESS) return -1;
    double best = 0;
    for (unsigned d = 0; d < n && d < STRETTO_MAX_DEVICES; d++) {
        void *h = NULL;
        if (g_nvml.handle(d, &h) != NVML_SUCCESS) continue;
        nvml_sample samples[64];
        unsigned int count = 64;
        int rc = g_nvml.proc_util(h, samples, &count, g_last_ts_us[d]);
        if (rc != NVML_SUCCESS) continue;
        double sum = 0;
        for (unsigned k = 0; k < count; k++) {
            if (samples[k].timeStamp > g_last_ts_us[d]) g_last_ts_us[d] = samples[k].timeStamp;
            if (is_container_pid(samples[k].pid)) sum += samples[k].smUtil;
        }
        if (sum > best) best = sum;
    }
    return best;
}

void standalone_tick(uint32_t cap_bp) {
    if (g_ledger == NULL || !claim_controller()) {
        g_last_tick_ns = 0;
        return;
    }
    if (g_nvml_ready < 0) {
        pthread_once(&g_nvml_once, load_nvml);
        g_nvml_ready = g_nvml.init && g_nvml.count && g_nvml.handle && g_nvml.proc_util && g_nvml.init(0) == NVML_SUCCESS;
        if (!g_nvml_ready) shim_log(1, "NVML unavailable: the utilization cap keeps its initial rate");
    }
    if (!g_nvml_ready) return;
    struct stretto_bucket *b = &g_ledger->bucket;
    uint64_t now = stretto_monotonic_ns();
    uint64_t consumed = __atomic_load_n(&b->consumed_tokens, __ATOMIC_ACQUIRE);
    double util = measure_util();
    if (g_last_tick_ns == 0 || util < 0) {
        g_last_tick_ns = now;
        g_last_consumed = consumed;
        return;
    }
    double dt = (double)(now - g_last_tick_ns) / 1e9;
    double observed = (double)(consumed - g_last_consumed) / dt;
    g_last_tick_ns = now;
    g_last_consumed = consumed;
    double rate = (double)__atomic_load_n(&b->rate_tokens_per_s, __ATOMIC_ACQUIRE);
    double cap = cap_bp / 100.0;
    if (util >= 1.0 && observed > 0) {
        double want = observed * cap / util;
        if (want > rate * 4) want = rate * 4;
        if (want < rate / 4) want = rate / 4;
        rate = 0.5 * rate + 0.5 * want;
    }
    if (rate < 1) rate = 1;
    bucket_set_rate((uint64_t)rate, 50);
}
