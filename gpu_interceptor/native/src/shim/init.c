/*
 * init.c -- configuration, real-driver resolution and the poller thread of the shim.
 *
 * Nothing runs at load time (no constructors). The first hooked call runs shim_init_slow():
 *  1. read the environment (STRETTO_CONTROL_FILE, STRETTO_GPU_MEMORY_LIMIT, ...);
 *  2. resolve the real driver with our own dlopen("libcuda.so.1") (works when the program itself
 *     dlopened libcuda RTLD_LOCAL, where RTLD_NEXT would not);
 *  3. decide the limits: the control file (waiting up to STRETTO_CONTROL_WAIT_MS for the daemon to
 *     write it), else the standalone environment limits, else fail closed (cuInit returns
 *     CUDA_ERROR_NOT_INITIALIZED) unless STRETTO_FAILSAFE=open;
 *  4. map the ledger, apply the limits, start the poller.
 * The poller re-reads the control file (keeping the last good one when a new one is refused,
 * falling back to the guaranteed minimum when the daemon's heartbeat is stale), reaps the slots
 * of dead processes, and in standalone mode runs the local utilization controller.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

struct real_table g_real;
struct stretto_ledger *g_ledger;
int g_init_done;
CUresult g_init_rc = CUDA_ERROR_NOT_INITIALIZED;

enum shim_mode { MODE_CONTROL_FILE = 1, MODE_STANDALONE = 2, MODE_OPEN = 3 };

static pthread_mutex_t g_init_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_log_level = 1;
static enum shim_mode g_mode;
static char g_control_path[PATH_MAX];
static uint32_t g_poll_ms = 100;
static struct stretto_control g_good; /* last control file accepted */
static int g_have_good;
static int g_stale; /* currently on the fallback rate */
static const char *g_last_refusal;
static uint64_t g_env_memory;
static uint32_t g_env_util_bp;
static int g_poller_running;

void shim_log(int level, const char *fmt, ...) {
    if (level > g_log_level) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    char out[600];
    int m = snprintf(out, sizeof out, "stretto-shim[%d]: %.*s", (int)getpid(), n, line);
    if (m > 0 && write(STDERR_FILENO, out, (size_t)(m < (int)sizeof out ? m : (int)sizeof out - 1)) < 0) {
    }
}

static uint64_t env_u64(const char *name, uint64_t fallback) {
    const char *v = getenv(name);
    return (v && *v) ? strtoull(v, NULL, 10) : fallback;
}

/* ---- real symbols ------------------------------------------------------------------------ */

static void resolve_real(void) {
    const char *path = getenv("STRETTO_REAL_LIBCUDA");
    if (path == NULL || *path == '\0') path = "libcuda.so.1";
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (h == NULL) shim_log(1, "cannot load the driver %s (%s); trying RTLD_NEXT", path, dlerror());
    void *(*sym)(void *, const char *) = stretto_real_dlsym;
#define RESOLVE(field, name)                                                   \
    do {                                                                       \
        void *p = h ? sym(h, name) : NULL;                                     \
        if (p == NULL) p = sym(RTLD_NEXT, name);                               \
        memcpy(&g_real.field, &p, sizeof p);                                   \
    } while (0)
#define HOOK(s, base, since, ptsz, ret, params) RESOLVE(s, #s);
#include "hooks.def"
#undef HOOK
    RESOLVE(cuCtxGetDevice, "cuCtxGetDevice");
#undef RESOLVE
}

/* ---- applying limits --------------------------------------------------------------------- */

static void apply_memory_limit(uint64_t bytes) {
    for (int d = 0; d < STRETTO_MAX_DEVICES; d++) __atomic_store_n(&g_ledger->mem_limit[d], bytes, __ATOMIC_RELEASE);
}

static void apply_control(const struct stretto_control *c, int stale) {
    apply_memory_limit((c->flags & STRETTO_CONTROL_FLAG_MEMORY_LIMITED) ? c->memory_limit_bytes : 0);
    uint64_t rate = 0;
    if (c->flags & STRETTO_CONTROL_FLAG_UTIL_LIMITED) {
        rate = c->rate_tokens_per_s;
        if (stale && c->fallback_rate_tokens_per_s) rate = c->fallback_rate_tokens_per_s;
    }
    bucket_set_rate(rate, c->burst_ms);
    __atomic_store_n(&g_ledger->bucket.applied_generation, c->generation, __ATOMIC_RELAXED);
}

static int is_stale(const struct stretto_control *c) {
    if (c->stale_after_ms == 0) return 0;
    uint64_t now = stretto_realtime_ns();
    return now > c->written_unix_ns && now - c->written_unix_ns > (uint64_t)c->stale_after_ms * 1000000ull;
}

/* Re-reads the control file; keeps the last good one if the new one is refused. */
static void poll_control(void) {
    struct stretto_control c;
    const char *why = NULL;
    if (control_read_file(g_control_path, &c, &why) == 0) {
        int changed = !g_have_good || c.generation != g_good.generation ||
                      c.written_unix_ns != g_good.written_unix_ns;
        if (changed) {
            g_good = c;
            g_have_good = 1;
            g_last_refusal = NULL;
        }
    } else if (why != g_last_refusal) {
        shim_log(1, "control file %s refused (%s); keeping the last good limits", g_control_path, why);
        g_last_refusal = why;
    }
    if (!g_have_good) return;
    int stale = is_stale(&g_good);
    if (stale != g_stale)
        shim_log(1, stale ? "daemon heartbeat stale: falling back to the guaranteed minimum share"
                          : "daemon heartbeat back: resuming its limits");
    g_stale = stale;
    apply_control(&g_good, stale);
}

static void *poller_main(void *arg) {
    (void)arg;
    uint64_t last_reap = 0;
    for (;;) {
        uint64_t now = stretto_monotonic_ns();
        if (g_mode == MODE_CONTROL_FILE) poll_control();
        if (g_mode == MODE_STANDALONE && g_env_util_bp) standalone_tick(g_env_util_bp);
        if (now - last_reap >= 200000000ull) {
            ledger_reap();
            last_reap = now;
        }
        stretto_sleep_until_ns(now + (uint64_t)g_poll_ms * 1000000ull);
    }
    return NULL;
}

void shim_ensure_poller(void) {
    if (__atomic_load_n(&g_poller_running, __ATOMIC_ACQUIRE) || g_ledger == NULL || g_mode == MODE_OPEN) return;
    ledger_join();
    pthread_mutex_lock(&g_init_lock);
    if (!g_poller_running) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&t, &attr, poller_main, NULL) == 0) {
            pthread_setname_np(t, "stretto-poller");
            __atomic_store_n(&g_poller_running, 1, __ATOMIC_RELEASE);
        } else {
            shim_log(0, "cannot start the poller thread; limits stay as read at start");
        }
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&g_init_lock);
}

static void atfork_child(void) {
    /* Threads do not survive fork: the child restarts its poller on its next CUDA call. */
    g_poller_running = 0;
    pthread_mutex_init(&g_init_lock, NULL);
    ledger_after_fork_child();
}

/* ---- init -------------------------------------------------------------------------------- */

static CUresult fail_closed(const char *why) {
    shim_log(0, "refusing to run uncapped: %s (set STRETTO_FAILSAFE=open to run without limits)", why);
    return CUDA_ERROR_NOT_INITIALIZED;
}

static CUresult configure(void) {
    const char *control = getenv("STRETTO_CONTROL_FILE");
    const char *mem = getenv("STRETTO_GPU_MEMORY_LIMIT");
    const char *util = getenv("STRETTO_GPU_UTILIZATION_LIMIT");
    const char *failsafe = getenv("STRETTO_FAILSAFE");
    const char *ledger = getenv("STRETTO_LEDGER_FILE");
    g_poll_ms = (uint32_t)env_u64("STRETTO_POLL_MS", 100);
    if (g_poll_ms == 0) g_poll_ms = 100;
    int open_ok = failsafe && strcmp(failsafe, "open") == 0;

    if (mem && *mem && stretto_parse_size(mem, &g_env_memory) != 0) return fail_closed("bad STRETTO_GPU_MEMORY_LIMIT");
    if (util && *util && stretto_parse_percent_bp(util, &g_env_util_bp) != 0)
        return fail_closed("bad STRETTO_GPU_UTILIZATION_LIMIT");
    int have_env = g_env_memory != 0 || g_env_util_bp != 0;

    char ledger_path[PATH_MAX];
    if (control && *control) {
        snprintf(g_control_path, sizeof g_control_path, "%s", control);
        uint64_t wait_ms = env_u64("STRETTO_CONTROL_WAIT_MS", 10000);
        uint64_t deadline = stretto_monotonic_ns() + wait_ms * 1000000ull;
        const char *why = "missing";
        for (;;) {
            struct stretto_control c;
            if (control_read_file(g_control_path, &c, &why) == 0) {
                g_good = c;
                g_have_good = 1;
                break;
            }
            if (stretto_monotonic_ns() >= deadline) break;
            stretto_sleep_until_ns(stretto_monotonic_ns() + 50000000ull);
        }
        if (g_have_good) {
            g_mode = MODE_CONTROL_FILE;
        } else if (have_env) {
            shim_log(1, "control file %s %s; using the standalone environment limits", g_control_path, why);
            g_mode = MODE_STANDALONE;
        } else if (open_ok) {
            shim_log(0, "control file %s %s and STRETTO_FAILSAFE=open: running WITHOUT limits", g_control_path, why);
            g_mode = MODE_OPEN;
        } else {
            char msg[PATH_MAX + 64];
            snprintf(msg, sizeof msg, "control file %s %s", g_control_path, why);
            return fail_closed(msg);
        }
    } else if (have_env) {
        g_mode = MODE_STANDALONE;
    } else if (open_ok) {
        shim_log(1, "no limits configured and STRETTO_FAILSAFE=open: running WITHOUT limits");
        g_mode = MODE_OPEN;
    } else {
        return fail_closed("no STRETTO_CONTROL_FILE and no STRETTO_GPU_MEMORY_LIMIT / STRETTO_GPU_UTILIZATION_LIMIT");
    }
    if (g_mode == MODE_OPEN) return CUDA_SUCCESS;

    if (ledger && *ledger) {
        snprintf(ledger_path, sizeof ledger_path, "%s", ledger);
    } else if (g_mode == MODE_CONTROL_FILE) {
        snprintf(ledger_path, sizeof ledger_path, "%s", g_control_path);
        char *slash = strrchr(ledger_path, '/');
        if (slash)
            snprintf(slash + 1, sizeof ledger_path - (size_t)(slash + 1 - ledger_path), "ledger");
        else
            snprintf(ledger_path, sizeof ledger_path, "ledger");
    } else {
        snprintf(ledger_path, sizeof ledger_path, "/tmp/stretto-%d.ledger", (int)getuid());
    }
    if (ledger_open(ledger_path) != 0) return fail_closed("the ledger cannot be mapped");

    if (g_mode == MODE_CONTROL_FILE) {
        g_stale = is_stale(&g_good);
        apply_control(&g_good, g_stale);
    } else {
        apply_memory_limit(g_env_memory);
        if (g_env_util_bp) {
            uint64_t per_pct = env_u64("STRETTO_INITIAL_TOKENS_PER_PERCENT", 2000);
            /* A rate another process's controller already tuned is better than our first guess. */
            if (__atomic_load_n(&g_ledger->bucket.rate_tokens_per_s, __ATOMIC_ACQUIRE) == 0)
                bucket_set_rate(per_pct * g_env_util_bp / 100, 50);
        } else {
            bucket_set_rate(0, 0);
        }
    }
    return CUDA_SUCCESS;
}

void shim_init_slow(void) {
    pthread_mutex_lock(&g_init_lock);
    if (!g_init_done) {
        const char *lvl = getenv("STRETTO_LOG");
        if (lvl && *lvl) g_log_level = atoi(lvl);
        stretto_dlsym_bootstrap();
        resolve_real();
        CUresult rc = configure();
        if (rc == CUDA_SUCCESS && g_real.cuInit == NULL) {
            shim_log(0, "the CUDA driver could not be found");
            rc = CUDA_ERROR_NOT_INITIALIZED;
        }
        g_init_rc = rc;
        pthread_atfork(NULL, NULL, atfork_child);
        __atomic_store_n(&g_init_done, 1, __ATOMIC_RELEASE);
        if (rc == CUDA_SUCCESS) {
            shim_log(2, "initialised: mode %d", (int)g_mode);
            pthread_mutex_unlock(&g_init_lock);
            shim_ensure_poller();
            return;
        }
    }
    pthread_mutex_unlock(&g_init_lock);
}
