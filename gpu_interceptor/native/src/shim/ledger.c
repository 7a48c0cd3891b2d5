/*
 * ledger.c -- the container's shared memory ledger and this process's allocation records.
 *
 * Exactness: a reservation is one compare-and-swap on mem_used[dev] that never lets it pass the
 * cap, taken *before* the driver allocates (reserve, then allocate; undo if the driver fails), so
 * concurrent processes can never jointly overshoot. Each process also charges its own slot; a
 * slot whose (pid, start time) is gone is reaped under the robust mutex and its bytes returned.
 * Ordering keeps mem_used >= sum of slots at every instant: reserve adds to mem_used first and the
 * slot second; release subtracts from the slot first. A process killed in between leaves at most
 * one allocation over-counted (never under-counted), which errs on the side of the cap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

static int g_slot = -1;

static struct stretto_slot *my_slot(void);

void ledger_join(void) { (void)my_slot(); }

static pthread_mutex_t *ledger_mutex(void) { return (pthread_mutex_t *)(void *)g_ledger->mutex; }

static void lock_ledger(void) {
    int rc = pthread_mutex_lock(ledger_mutex());
    if (rc == EOWNERDEAD) {
        /* A process died holding the lock; slot updates are single stores, so state is usable. */
        pthread_mutex_consistent(ledger_mutex());
    }
}

static void unlock_ledger(void) { pthread_mutex_unlock(ledger_mutex()); }

_Static_assert(sizeof(pthread_mutex_t) <= 64, "mutex fits its area");

int ledger_open(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        shim_log(0, "cannot open ledger %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX) != 0) {
        close(fd);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || ((size_t)st.st_size < STRETTO_LEDGER_FILE_SIZE &&
                                ftruncate(fd, STRETTO_LEDGER_FILE_SIZE) != 0)) {
        shim_log(0, "cannot size ledger %s: %s", path, strerror(errno));
        flock(fd, LOCK_UN);
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, STRETTO_LEDGER_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        shim_log(0, "cannot map ledger %s: %s", path, strerror(errno));
        flock(fd, LOCK_UN);
        close(fd);
        return -1;
    }
    struct stretto_ledger *l = p;
    int rc = 0;
    if (__atomic_load_n(&l->magic, __ATOMIC_ACQUIRE) != STRETTO_LEDGER_MAGIC) {
        memset(l, 0, sizeof *l);
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init((pthread_mutex_t *)(void *)l->mutex, &attr);
        pthread_mutexattr_destroy(&attr);
        l->version = STRETTO_LEDGER_VERSION;
        l->size = STRETTO_LEDGER_FILE_SIZE;
        l->max_slots = STRETTO_MAX_SLOTS;
        l->max_devices = STRETTO_MAX_DEVICES;
        __atomic_store_n(&l->magic, STRETTO_LEDGER_MAGIC, __ATOMIC_RELEASE);
    } else if (l->version != STRETTO_LEDGER_VERSION || l->size != STRETTO_LEDGER_FILE_SIZE) {
        shim_log(0, "ledger %s has version %u, this shim speaks %u", path, l->version, STRETTO_LEDGER_VERSION);
        munmap(p, STRETTO_LEDGER_FILE_SIZE);
        rc = -1;
    }
    flock(fd, LOCK_UN);
    close(fd);
    if (rc == 0) g_ledger = l;
    return rc;
}

static void sub_saturating(uint64_t *counter, uint64_t bytes) {
    uint64_t cur = __atomic_load_n(counter, __ATOMIC_RELAXED);
    uint64_t next;
    do {
        next = cur > bytes ? cur - bytes : 0;
    } while (!__atomic_compare_exchange_n(counter, &cur, next, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
}

int ledger_reap(void) {
    struct stretto_ledger *l = g_ledger;
    if (l == NULL) return 0;
    int reaped = 0;
    lock_ledger();
    for (int i = 0; i < STRETTO_MAX_SLOTS; i++) {
        struct stretto_slot *s = &l->slots[i];
        uint32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
        if (pid == 0 || i == g_slot) continue;
        if (stretto_process_alive((pid_t)pid, s->start_time)) continue;
        for (int d = 0; d < STRETTO_MAX_DEVICES; d++) {
            uint64_t b = __atomic_exchange_n(&s->bytes[d], 0, __ATOMIC_ACQ_REL);
            if (b) sub_saturating(&l->mem_used[d], b);
        }
        s->start_time = 0;
        __atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
        reaped++;
    }
    unlock_ledger();
    if (reaped) shim_log(2, "reaped %d exited process(es)", reaped);
    return reaped;
}

static struct stretto_slot *my_slot(void) {
    struct stretto_ledger *l = g_ledger;
    if (l == NULL) return NULL;
    int idx = __atomic_load_n(&g_slot, __ATOMIC_ACQUIRE);
    if (idx >= 0) return &l->slots[idx];
    pid_t pid = getpid();
    uint64_t start = stretto_process_start_time(pid);
    struct stretto_slot *mine = NULL;
    for (int pass = 0; pass < 2 && mine == NULL; pass++) {
        if (pass == 1) ledger_reap();
        lock_ledger();
        idx = __atomic_load_n(&g_slot, __ATOMIC_ACQUIRE); /* another thread may have won */
        if (idx >= 0) {
            mine = &l->slots[idx];
        } else {
            for (int i = 0; i < STRETTO_MAX_SLOTS; i++) {
                struct stretto_slot *s = &l->slots[i];
                if (s->pid != 0) continue;
                memset(s->bytes, 0, sizeof s->bytes);
                s->start_time = start;
                __atomic_store_n(&s->pid, (uint32_t)pid, __ATOMIC_RELEASE);
                __atomic_store_n(&g_slot, i, __ATOMIC_RELEASE);
                mine = s;
                break;
            }
        }
        unlock_ledger();
    }
    if (mine == NULL) shim_log(0, "all %d process slots of the ledger are in use", STRETTO_MAX_SLOTS);
    return mine;
}

static int clamp_dev(int dev) { return dev < 0 ? 0 : dev >= STRETTO_MAX_DEVICES ? STRETTO_MAX_DEVICES - 1 : dev; }

static int try_reserve(struct stretto_ledger *l, int dev, uint64_t bytes) {
    uint64_t limit = __atomic_load_n(&l->mem_limit[dev], __ATOMIC_ACQUIRE);
    uint64_t cur = __atomic_load_n(&l->mem_used[dev], __ATOMIC_RELAXED);
    do {
        if (limit != 0 && (bytes > limit || cur > limit - bytes)) return -1;
    } while (!__atomic_compare_exchange_n(&l->mem_used[dev], &cur, cur + bytes, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    uint64_t now = cur + bytes, peak = __atomic_load_n(&l->mem_peak[dev], __ATOMIC_RELAXED);
    while (now > peak && !__atomic_compare_exchange_n(&l->mem_peak[dev], &peak, now, 1, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED)) {
    }
    return 0;
}

int ledger_reserve(int dev, uint64_t bytes) {
    struct stretto_ledger *l = g_ledger;
    if (l == NULL) return 0; /* fail-open mode without a ledger */
    dev = clamp_dev(dev);
    struct stretto_slot *s = my_slot();
    if (s == NULL) return -1;
    if (try_reserve(l, dev, bytes) != 0) {
        /* Memory of processes that died without freeing comes back before we refuse. */
        if (ledger_reap() == 0 || try_reserve(l, dev, bytes) != 0) {
            __atomic_add_fetch(&l->oom_events, 1, __ATOMIC_RELAXED);
            return -1;
        }
    }
    __atomic_add_fetch(&s->bytes[dev], bytes, __ATOMIC_ACQ_REL);
    return 0;
}

void ledger_release(int dev, uint64_t bytes) {
    struct stretto_ledger *l = g_ledger;
    if (l == NULL) return;
    dev = clamp_dev(dev);
    struct stretto_slot *s = my_slot();
    if (s != NULL) sub_saturating(&s->bytes[dev], bytes);
    sub_saturating(&l->mem_used[dev], bytes);
}

/* ---- this process's allocation records: (kind, key) -> (bytes, device) --------------------- */

#define TRACK_BUCKETS 4096
#define TRACK_STRIPES 64

struct track_node {
    struct track_node *next;
    uint64_t key;
    uint64_t bytes;
    int kind;
    int dev;
};

static struct track_node *g_buckets[TRACK_BUCKETS];
static pthread_mutex_t g_stripes[TRACK_STRIPES] = {[0 ... TRACK_STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER};

static unsigned track_hash(int kind, uint64_t key) {
    uint64_t h = (key ^ ((uint64_t)kind << 56)) * 0x9E3779B97F4A7C15ull;
    return (unsigned)(h >> 52) & (TRACK_BUCKETS - 1);
}

void track_put(int kind, uint64_t key, uint64_t bytes, int dev) {
    struct track_node *n = malloc(sizeof *n);
    if (n == NULL) return; /* the charge stays in the ledger: errs on the side of the cap */
    n->key = key;
    n->bytes = bytes;
    n->kind = kind;
    n->dev = dev;
    unsigned b = track_hash(kind, key);
    pthread_mutex_t *m = &g_stripes[b % TRACK_STRIPES];
    pthread_mutex_lock(m);
    n->next = g_buckets[b];
    g_buckets[b] = n;
    pthread_mutex_unlock(m);
}

int track_take(int kind, uint64_t key, uint64_t *bytes, int *dev) {
    unsigned b = track_hash(kind, key);
    pthread_mutex_t *m = &g_stripes[b % TRACK_STRIPES];
    pthread_mutex_lock(m);
    struct track_node **pp = &g_buckets[b], *n;
    while ((n = *pp) != NULL && !(n->key == key && n->kind == kind)) pp = &n->next;
    if (n != NULL) *pp = n->next;
    pthread_mutex_unlock(m);
    if (n == NULL) return 0;
    *bytes = n->bytes;
    *dev = n->dev;
    free(n);
    return 1;
}

void ledger_after_fork_child(void) {
    /* The child owns no device memory (CUDA state is not inherited) and needs its own slot. */
    g_slot = -1;
    memset(g_buckets, 0, sizeof g_buckets);
    for (int i = 0; i < TRACK_STRIPES; i++) pthread_mutex_init(&g_stripes[i], NULL);
}
