/* fakegpu.c -- configuration and the shared simulated-GPU timeline (see fakegpu.h). */
#define _GNU_SOURCE
#include "fakegpu.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FG_MAGIC 0x46475453u /* "STGF" */
#define FG_VERSION 1u

static struct fg_config g_config;
static pthread_once_t g_config_once = PTHREAD_ONCE_INIT;
static struct fg_timeline *g_timeline;
static pthread_once_t g_timeline_once = PTHREAD_ONCE_INIT;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = '\0';
    return s;
}

static uint64_t env_u64(const char *name, uint64_t fallback, uint64_t scale) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') return fallback;
    return (uint64_t)(strtod(v, NULL) * (double)scale);
}

static void load_config(void) {
    struct fg_config *c = &g_config;
    memset(c, 0, sizeof *c);
    c->block_time_ns = 50000;
    c->nvml_window_ns = 1000000000ull;
    snprintf(c->timeline, sizeof c->timeline, "/dev/shm/stretto-fakegpu-%d", (int)getuid());
    const char *path = getenv("STRETTO_FAKE_GPU_CONFIG");
    FILE *f = (path && *path) ? fopen(path, "re") : NULL;
    if (path && *path && f == NULL)
        fprintf(stderr, "stretto-fakegpu: cannot open %s (%s); using one default GPU\n", path, strerror(errno));
    if (f != NULL) {
        char line[1024];
        while (fgets(line, sizeof line, f) != NULL) {
            char *hash = strchr(line, '#');
            if (hash) *hash = '\0';
            char *eq = strchr(line, '=');
            if (eq == NULL) continue;
            *eq = '\0';
            char *key = trim(line), *value = trim(eq + 1);
            if (strcmp(key, "gpu") == 0 && c->gpu_count < FG_MAX_GPUS) {
                struct fg_gpu_config *g = &c->gpus[c->gpu_count];
                char *comma = strrchr(value, ',');
                uint64_t mem = 16ull << 30;
                if (comma) {
                    *comma = '\0';
                    if (stretto_parse_size(trim(comma + 1), &mem) != 0) {
                        fprintf(stderr, "stretto-fakegpu: bad memory '%s'\n", trim(comma + 1));
                        mem = 16ull << 30;
                    }
                }
                snprintf(g->name, sizeof g->name, "%s", trim(value));
                g->memory = mem;
                c->gpu_count++;
            } else if (strcmp(key, "timeline") == 0) {
                snprintf(c->timeline, sizeof c->timeline, "%s", value);
            } else if (strcmp(key, "block_time_us") == 0) {
                c->block_time_ns = (uint64_t)(strtod(value, NULL) * 1000.0);
            } else if (strcmp(key, "alloc_latency_us") == 0) {
                c->alloc_latency_ns = (uint64_t)(strtod(value, NULL) * 1000.0);
            } else if (strcmp(key, "nvml_window_ms") == 0) {
                c->nvml_window_ns = (uint64_t)(strtod(value, NULL) * 1e6);
            }
        }
        fclose(f);
    }
    if (c->gpu_count == 0) {
        snprintf(c->gpus[0].name, FG_NAME_LEN, "Stretto Fake GPU");
        c->gpus[0].memory = 16ull << 30;
        c->gpu_count = 1;
    }
    /* Per-process overrides (a test gives each workload its own kernel cost or latency). */
    c->block_time_ns = env_u64("STRETTO_FAKE_BLOCK_US", c->block_time_ns, 1000);
    c->alloc_latency_ns = env_u64("STRETTO_FAKE_ALLOC_LATENCY_US", c->alloc_latency_ns, 1000);
    if (c->nvml_window_ns == 0) c->nvml_window_ns = 1000000000ull;
}

const struct fg_config *fg_config(void) {
    pthread_once(&g_config_once, load_config);
    return &g_config;
}

static void init_mutex(pthread_mutex_t *m) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
}

static void map_timeline(void) {
    const struct fg_config *c = fg_config();
    int fd = open(c->timeline, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        fprintf(stderr, "stretto-fakegpu: cannot open timeline %s: %s\n", c->timeline, strerror(errno));
        return;
    }
    fchmod(fd, 0666);
    flock(fd, LOCK_EX);
    struct stat st;
    size_t size = sizeof(struct fg_timeline);
    if (fstat(fd, &st) == 0 && (size_t)st.st_size < size && ftruncate(fd, (off_t)size) != 0) {
        flock(fd, LOCK_UN);
        close(fd);
        return;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        flock(fd, LOCK_UN);
        close(fd);
        return;
    }
    struct fg_timeline *t = p;
    if (t->magic != FG_MAGIC || t->version != FG_VERSION) {
        for (int i = 0; i < FG_MAX_GPUS; i++) init_mutex(&t->gpus[i].lock);
        t->version = FG_VERSION;
        t->gpu_count = (uint32_t)c->gpu_count;
        __atomic_store_n(&t->magic, FG_MAGIC, __ATOMIC_RELEASE);
    }
    flock(fd, LOCK_UN);
    close(fd);
    g_timeline = t;
}

struct fg_timeline *fg_timeline(void) {
    pthread_once(&g_timeline_once, map_timeline);
    return g_timeline;
}

void fg_lock(struct fg_gpu_state *g) {
    if (pthread_mutex_lock(&g->lock) == EOWNERDEAD) pthread_mutex_consistent(&g->lock);
}

void fg_unlock(struct fg_gpu_state *g) { pthread_mutex_unlock(&g->lock); }

static struct fg_gpu_state *gpu_state(int gpu) {
    struct fg_timeline *t = fg_timeline();
    if (t == NULL || gpu < 0 || gpu >= FG_MAX_GPUS) return NULL;
    return &t->gpus[gpu];
}

uint64_t fg_enqueue(int gpu, uint32_t pid, uint64_t busy_ns, uint32_t blocks) {
    struct fg_gpu_state *g = gpu_state(gpu);
    uint64_t now = stretto_monotonic_ns();
    if (g == NULL || busy_ns == 0) return now;
    fg_lock(g);
    uint64_t start = g->busy_until_ns > now ? g->busy_until_ns : now;
    uint64_t end = start + busy_ns;
    g->busy_until_ns = end;
    g->kernels++;
    struct fg_segment *last = g->seg_count ? &g->ring[(g->seg_count - 1) % FG_RING] : NULL;
    if (last && last->pid == pid && last->end_ns == start) {
        last->end_ns = end; /* back-to-back kernels of one process: one segment */
        last->blocks += blocks;
    } else {
        struct fg_segment *s = &g->ring[g->seg_count % FG_RING];
        s->start_ns = start;
        s->end_ns = end;
        s->pid = pid;
        s->blocks = blocks;
        g->seg_count++;
    }
    fg_unlock(g);
    return end;
}

static uint64_t overlap(const struct fg_segment *s, uint64_t t0, uint64_t t1) {
    uint64_t a = s->start_ns > t0 ? s->start_ns : t0;
    uint64_t b = s->end_ns < t1 ? s->end_ns : t1;
    return b > a ? b - a : 0;
}

uint64_t fg_busy_ns(int gpu, uint32_t pid, uint64_t t0, uint64_t t1) {
    struct fg_gpu_state *g = gpu_state(gpu);
    if (g == NULL || t1 <= t0) return 0;
    uint64_t busy = 0;
    fg_lock(g);
    uint64_t n = g->seg_count < FG_RING ? g->seg_count : FG_RING;
    for (uint64_t i = 0; i < n; i++) {
        const struct fg_segment *s = &g->ring[(g->seg_count - 1 - i) % FG_RING];
        if (s->end_ns <= t0) break; /* segments are in engine order: everything older ends earlier */
        if (pid == 0 || s->pid == pid) busy += overlap(s, t0, t1);
    }
    fg_unlock(g);
    return busy;
}

int fg_busy_by_pid(int gpu, uint64_t t0, uint64_t t1, uint32_t *pids, uint64_t *busy, int max) {
    struct fg_gpu_state *g = gpu_state(gpu);
    if (g == NULL || t1 <= t0) return 0;
    int count = 0;
    fg_lock(g);
    uint64_t n = g->seg_count < FG_RING ? g->seg_count : FG_RING;
    for (uint64_t i = 0; i < n; i++) {
        const struct fg_segment *s = &g->ring[(g->seg_count - 1 - i) % FG_RING];
        if (s->end_ns <= t0) break;
        uint64_t ov = overlap(s, t0, t1);
        if (ov == 0) continue;
        int k = 0;
        while (k < count && pids[k] != s->pid) k++;
        if (k == count) {
            if (count == max) continue;
            pids[count] = s->pid;
            busy[count] = 0;
            count++;
        }
        busy[k] += ov;
    }
    fg_unlock(g);
    return count;
}

/* Called with the lock held: frees the memory of processes that are gone. */
static void reap_locked(struct fg_gpu_state *g) {
    for (int i = 0; i < FG_PIDS; i++) {
        struct fg_pid_mem *p = &g->pids[i];
        if (p->pid != 0 && !stretto_process_alive((pid_t)p->pid, p->start_time)) {
            g->mem_used -= p->bytes < g->mem_used ? p->bytes : g->mem_used;
            memset(p, 0, sizeof *p);
        }
    }
}

static struct fg_pid_mem *pid_entry_locked(struct fg_gpu_state *g, uint32_t pid, int create) {
    struct fg_pid_mem *free_slot = NULL;
    for (int i = 0; i < FG_PIDS; i++) {
        if (g->pids[i].pid == pid) return &g->pids[i];
        if (g->pids[i].pid == 0 && free_slot == NULL) free_slot = &g->pids[i];
    }
    if (!create) return NULL;
    if (free_slot == NULL) {
        reap_locked(g);
        for (int i = 0; i < FG_PIDS && free_slot == NULL; i++)
            if (g->pids[i].pid == 0) free_slot = &g->pids[i];
        if (free_slot == NULL) return NULL;
    }
    free_slot->pid = pid;
    free_slot->start_time = stretto_process_start_time((pid_t)pid);
    free_slot->bytes = 0;
    return free_slot;
}

int fg_mem_charge(int gpu, uint32_t pid, uint64_t bytes) {
    struct fg_gpu_state *g = gpu_state(gpu);
    if (g == NULL) return -1;
    const struct fg_config *c = fg_config();
    uint64_t total = gpu < c->gpu_count ? c->gpus[gpu].memory : 0;
    int rc = -1;
    fg_lock(g);
    if (g->mem_used + bytes > total) reap_locked(g);
    struct fg_pid_mem *p = g->mem_used + bytes <= total ? pid_entry_locked(g, pid, 1) : NULL;
    if (p != NULL) {
        p->bytes += bytes;
        g->mem_used += bytes;
        if (g->mem_used > g->mem_peak) g->mem_peak = g->mem_used;
        rc = 0;
    }
    fg_unlock(g);
    return rc;
}

void fg_mem_credit(int gpu, uint32_t pid, uint64_t bytes) {
    struct fg_gpu_state *g = gpu_state(gpu);
    if (g == NULL) return;
    fg_lock(g);
    struct fg_pid_mem *p = pid_entry_locked(g, pid, 0);
    if (p != NULL) {
        uint64_t take = bytes < p->bytes ? bytes : p->bytes;
        p->bytes -= take;
        g->mem_used -= take < g->mem_used ? take : g->mem_used;
    }
    fg_unlock(g);
}

uint64_t fg_mem_used(int gpu) {
    static uint64_t last_reap[FG_MAX_GPUS];
    struct fg_gpu_state *g = gpu_state(gpu);
    if (g == NULL) return 0;
    uint64_t now = stretto_monotonic_ns();
    fg_lock(g);
    if (now - last_reap[gpu] > 100000000ull) { /* exited processes' memory: at most every 100 ms */
        reap_locked(g);
        last_reap[gpu] = now;
    }
    uint64_t used = g->mem_used;
    fg_unlock(g);
    return used;
}
