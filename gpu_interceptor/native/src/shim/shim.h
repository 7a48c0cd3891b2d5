/*
 * shim.h -- internal interface of libstretto-cuda.so, the LD_PRELOAD shim.
 *
 * Flow: a hooked call (or a dlsym / cuGetProcAddress lookup that hands out a hook) runs
 * shim_ready(), which on first use reads the configuration (env, control file), resolves the real
 * driver, maps the container's ledger and starts the poller thread (init.c). Memory wrappers
 * (memory.c) reserve in the ledger before calling the driver (ledger.c); launch wrappers
 * (launch.c) pay the token bucket. lookup.c maps names and driver addresses to wrappers.
 */
#ifndef STRETTO_SHIM_H
#define STRETTO_SHIM_H

#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <stdint.h>

#include "../common/common.h"
#include "stretto_control.h"

/* Real driver entry points, one field per hook, plus the few the shim calls but does not hook. */
struct real_table {
#define HOOK(sym, base, since, ptsz, ret, params) ret(*sym) params;
#include "hooks.def"
#undef HOOK
    CUresult (*cuCtxGetDevice)(CUdevice *device);
};

STRETTO_HIDDEN extern struct real_table g_real;
/* The container's ledger, NULL until init succeeded (or in fail-open mode without one). */
STRETTO_HIDDEN extern struct stretto_ledger *g_ledger;
/* 1 once init has finished (successfully or not). */
STRETTO_HIDDEN extern int g_init_done;
STRETTO_HIDDEN extern CUresult g_init_rc;

STRETTO_HIDDEN void shim_init_slow(void);

/* Returns CUDA_SUCCESS when the shim is initialised and enforcing, else the fail-closed error. */
static inline CUresult shim_ready(void) {
    if (__builtin_expect(!__atomic_load_n(&g_init_done, __ATOMIC_ACQUIRE), 0)) shim_init_slow();
    return g_init_rc;
}

STRETTO_HIDDEN void shim_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
STRETTO_HIDDEN void shim_ensure_poller(void);

/* ledger.c */
STRETTO_HIDDEN int ledger_open(const char *path);
STRETTO_HIDDEN int ledger_reserve(int dev, uint64_t bytes);
STRETTO_HIDDEN void ledger_release(int dev, uint64_t bytes);
STRETTO_HIDDEN int ledger_reap(void);
/* Takes this process's slot (its pid becomes visible to the controller). */
STRETTO_HIDDEN void ledger_join(void);
STRETTO_HIDDEN void ledger_after_fork_child(void);
enum track_kind { TRACK_PTR = 1, TRACK_VMM = 2, TRACK_ARRAY = 3 };
STRETTO_HIDDEN void track_put(int kind, uint64_t key, uint64_t bytes, int dev);
/* Removes the record; returns 1 and its size and device if it was tracked. */
STRETTO_HIDDEN int track_take(int kind, uint64_t key, uint64_t *bytes, int *dev);

/* launch.c */
STRETTO_HIDDEN void bucket_charge_slow(struct stretto_bucket *b, uint64_t tokens);
static inline void bucket_charge(uint64_t tokens) {
    struct stretto_ledger *l = g_ledger;
    if (l != NULL && __atomic_load_n(&l->bucket.rate_tokens_per_s, __ATOMIC_RELAXED) != 0)
        bucket_charge_slow(&l->bucket, tokens);
}
STRETTO_HIDDEN void bucket_set_rate(uint64_t rate, uint32_t burst_ms);

/* control.c (also linked into the control tool) */
STRETTO_HIDDEN int control_decode(const void *buf, size_t len, struct stretto_control *out, const char **why);
STRETTO_HIDDEN void control_encode(struct stretto_control *c);
STRETTO_HIDDEN int control_read_file(const char *path, struct stretto_control *out, const char **why);

/* standalone.c: the local utilization controller for runs without a daemon. */
STRETTO_HIDDEN void standalone_tick(uint32_t cap_bp);

/* lookup.c */
STRETTO_HIDDEN void *lookup_hook_by_name(const char *name);
STRETTO_HIDDEN extern void *(*stretto_real_dlsym)(void *, const char *);
STRETTO_HIDDEN void stretto_dlsym_bootstrap(void);

#endif
