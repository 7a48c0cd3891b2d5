/*
 * launch.c -- the container's token bucket on kernel launches.
 *
 * Tokens are thread blocks: a launch costs gridDimX * gridDimY * gridDimZ (a graph launch a
 * fixed STRETTO_GRAPH_LAUNCH_COST, default 1024). The bucket lives in the ledger, so every process
 * of the container draws from one rate, which the daemon (or the standalone controller) tunes
 * from measured utilization; tokens-to-GPU-time need not be known in advance.
 *
 * Fast path with no limit: one relaxed load of the rate. With a limit: a vDSO clock read, a CAS
 * to refill (at most one refill per 10 us across all processes), and a fetch-sub. A launch that
 * drives the balance negative sleeps until its debt is paid; the wait is counted as throttled
 * time (the daemon's demand signal and a metric).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>

#include "shim.h"

#define MICRO 1000000ll
#define REFILL_GRANULE_NS 10000ull
#define MAX_REFILL_NS 1000000000ull

static uint64_t g_graph_cost;

void bucket_set_rate(uint64_t rate, uint32_t burst_ms) {
    struct stretto_bucket *b = &g_ledger->bucket;
    if (burst_ms == 0) burst_ms = 50;
    int64_t burst = (int64_t)((unsigned __int128)rate * burst_ms * 1000);
    if (burst < 2 * MICRO) burst = 2 * MICRO;
    __atomic_store_n(&b->burst_micro, burst, __ATOMIC_RELAXED);
    uint64_t old = __atomic_exchange_n(&b->rate_tokens_per_s, rate, __ATOMIC_RELEASE);
    if (old == 0 && rate != 0) __atomic_store_n(&b->last_refill_ns, stretto_monotonic_ns(), __ATOMIC_RELEASE);
}

static void refill(struct stretto_bucket *b, uint64_t now) {
    uint64_t last = __atomic_load_n(&b->last_refill_ns, __ATOMIC_ACQUIRE);
    if (now < last + REFILL_GRANULE_NS) return;
    if (!__atomic_compare_exchange_n(&b->last_refill_ns, &last, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return; /* someone else refilled for this interval */
    uint64_t rate = __atomic_load_n(&b->rate_tokens_per_s, __ATOMIC_RELAXED);
    uint64_t elapsed = now - last;
    if (elapsed > MAX_REFILL_NS) elapsed = MAX_REFILL_NS;
    int64_t add = (int64_t)((unsigned __int128)elapsed * rate / 1000u); /* micro-tokens */
    int64_t burst = __atomic_load_n(&b->burst_micro, __ATOMIC_RELAXED);
    int64_t cur = __atomic_add_fetch(&b->tokens_micro, add, __ATOMIC_ACQ_REL);
    while (cur > burst && !__atomic_compare_exchange_n(&b->tokens_micro, &cur, burst, 1, __ATOMIC_ACQ_REL,
                                                       __ATOMIC_RELAXED)) {
    }
}

void bucket_charge_slow(struct stretto_bucket *b, uint64_t tokens) {
    uint64_t now = stretto_monotonic_ns();
    refill(b, now);
    int64_t balance = __atomic_sub_fetch(&b->tokens_micro, (int64_t)tokens * MICRO, __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&b->consumed_tokens, tokens, __ATOMIC_RELAXED);
    __atomic_add_fetch(&b->launches, 1, __ATOMIC_RELAXED);
    if (balance >= 0) return;
    uint64_t start = now;
    for (;;) {
        uint64_t rate = __atomic_load_n(&b->rate_tokens_per_s, __ATOMIC_ACQUIRE);
        if (rate == 0) break; /* limit lifted while we waited */
        int64_t debt = -__atomic_load_n(&b->tokens_micro, __ATOMIC_ACQUIRE);
        if (debt <= 0) break;
        uint64_t wait = (uint64_t)((unsigned __int128)debt * 1000u / rate);
        if (wait < 20000) wait = 20000;
        if (wait > 10000000) wait = 10000000;
        stretto_sleep_until_ns(now + wait);
        now = stretto_monotonic_ns();
        refill(b, now);
    }
    __atomic_add_fetch(&b->throttled_ns, now - start, __ATOMIC_RELAXED);
}

#define GRID(x, y, z) ((uint64_t)(x) * (uint64_t)(y) * (uint64_t)(z))

STRETTO_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                       unsigned by, unsigned bz, unsigned shm, CUstream s, void **params,
                                       void **extra) {
    CUresult rc = shim_ready();
    if (__builtin_expect(rc != CUDA_SUCCESS, 0)) return rc;
    if (__builtin_expect(g_real.cuLaunchKernel == NULL, 0)) return CUDA_ERROR_NOT_FOUND;
    bucket_charge(GRID(gx, gy, gz));
    return g_real.cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shm, s, params, extra);
}

STRETTO_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                            unsigned by, unsigned bz, unsigned shm, CUstream s, void **params,
                                            void **extra) {
    CUresult rc = shim_ready();
    if (__builtin_expect(rc != CUDA_SUCCESS, 0)) return rc;
    if (g_real.cuLaunchKernel_ptsz == NULL) return CUDA_ERROR_NOT_FOUND;
    bucket_charge(GRID(gx, gy, gz));
    return g_real.cuLaunchKernel_ptsz(f, gx, gy, gz, bx, by, bz, shm, s, params, extra);
}

STRETTO_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **params, void **extra) {
    CUresult rc = shim_ready();
    if (__builtin_expect(rc != CUDA_SUCCESS, 0)) return rc;
    if (g_real.cuLaunchKernelEx == NULL) return CUDA_ERROR_NOT_FOUND;
    if (c != NULL) bucket_charge(GRID(c->gridDimX, c->gridDimY, c->gridDimZ));
    return g_real.cuLaunchKernelEx(c, f, params, extra);
}

STRETTO_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *c, CUfunction f, void **params, void **extra) {
    CUresult rc = shim_ready();
    if (__builtin_expect(rc != CUDA_SUCCESS, 0)) return rc;
    if (g_real.cuLaunchKernelEx_ptsz == NULL) return CUDA_ERROR_NOT_FOUND;
    if (c != NULL) bucket_charge(GRID(c->gridDimX, c->gridDimY, c->gridDimZ));
    return g_real.cuLaunchKernelEx_ptsz(c, f, params, extra);
}

STRETTO_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                                  unsigned by, unsigned bz, unsigned shm, CUstream s,
                                                  void **params) {
    CUresult rc = shim_ready();
    if (__builtin_expect(rc != CUDA_SUCCESS, 0)) return rc;
    if (g_real.cuLaunchCooperativeKernel == NULL) return CUDA_ERROR_NOT_FOUND;
    bucket_charge(GRID(gx, gy, gz));
    return g_real.cuLaunchCooperativeKernel(f, gx, gy, gz, bx, by, bz, shm, s, params);
}

STRETTO_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                                       unsigned bx, unsigned by, unsigned bz, unsigned shm,
                                                       CUstream s, void **params) {
    CUresult rc = shim_ready();
    if (__builtin_expect(rc != CUDA_SUCCESS, 0)) return rc;
    if (g_real.cuLaunchCooperativeKernel_ptsz == NULL) return CUDA_ERROR_NOT_FOUND;
    bucket_charge(GRID(gx, gy, gz));
    return g_real.cuLaunchCooperativeKernel_ptsz(f, gx, gy, gz, bx, by, bz, shm, s, params);
}

static uint64_t graph_cost(void) {
    uint64_t c = __atomic_load_n(&g_graph_cost, __ATOMIC_RELAXED);
    if (c == 0) {
        const char *v = getenv("STRETTO_GRAPH_LAUNCH_COST");
        c = (v && *v) ? strtoull(v, NULL, 10) : 1024;
        if (c == 0) c = 1;
        __atomic_store_n(&g_graph_cost, c, __ATOMIC_RELAXED);
    }
    return c;
}

STRETTO_EXPORT CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
    CUresult rc = shim_ready();
    if (__builtin_expect(rc != CUDA_SUCCESS, 0)) return rc;
    if (g_real.cuGraphLaunch == NULL) return CUDA_ERROR_NOT_FOUND;
    bucket_charge(graph_cost());
    return g_real.cuGraphLaunch(e, s);
}

STRETTO_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec e, CUstream s) {
    CUresult rc = shim_ready();
    if (__builtin_expect(rc != CUDA_SUCCESS, 0)) return rc;
    if (g_real.cuGraphLaunch_ptsz == NULL) return CUDA_ERROR_NOT_FOUND;
    bucket_charge(graph_cost());
    return g_real.cuGraphLaunch_ptsz(e, s);
}
