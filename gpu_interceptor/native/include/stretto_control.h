/*
 * stretto_control.h -- the two files a Stretto container's GPU share lives in.
 *
 * Sits between the node daemon (Python, gpu_interceptor/control_file.py) and the shim (C).
 *
 * 1. The control file (daemon -> shim). 128 bytes, little-endian, fixed layout, written by the
 *    daemon as a whole (write to a temporary name, then rename), read by the shim with pread into
 *    a private copy. The shim accepts a file only if magic, version, size and CRC-32 all match;
 *    anything else (truncated, corrupt, a future version) is refused and the last good limits stay.
 *    Never mmap'd by the shim, so a truncated file cannot SIGBUS a workload.
 *
 * 2. The ledger (shim <-> shim, read by the daemon). A shared mmap'd region per container: the
 *    memory ledger (reserve-then-allocate on one atomic per device), per-process slots keyed by
 *    (pid, start time) so a killed process's memory is reaped, and the token bucket for kernel
 *    launches with its counters (consumed tokens, launches, throttled time).
 *
 * Both layouts are asserted by tests/control_layout.c and by the Python tests, which compare
 * against the offsets below.
 */
#ifndef STRETTO_CONTROL_H
#define STRETTO_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#define STRETTO_CONTROL_MAGIC 0x43525453u /* "STRC" as little-endian bytes */
#define STRETTO_CONTROL_VERSION 1u
#define STRETTO_CONTROL_SIZE 128u

#define STRETTO_CONTROL_FLAG_MEMORY_LIMITED 0x1u /* memory_limit_bytes applies */
#define STRETTO_CONTROL_FLAG_UTIL_LIMITED 0x2u   /* rate_tokens_per_s applies */

/* Basis points: 10000 = 100 % of one GPU. */
#define STRETTO_BP_FULL 10000u

struct stretto_control {
    uint32_t magic;                      /*   0 STRETTO_CONTROL_MAGIC */
    uint16_t version;                    /*   4 STRETTO_CONTROL_VERSION */
    uint16_t size;                       /*   6 STRETTO_CONTROL_SIZE */
    uint64_t generation;                 /*   8 incremented by the writer on every write */
    uint64_t written_unix_ns;            /*  16 heartbeat: CLOCK_REALTIME of the write */
    uint32_t stale_after_ms;             /*  24 heartbeat older than this => fall back (0: never) */
    uint32_t flags;                      /*  28 STRETTO_CONTROL_FLAG_* */
    uint64_t memory_limit_bytes;         /*  32 per-device memory cap */
    uint32_t util_min_bp;                /*  40 guaranteed utilization */
    uint32_t util_max_bp;                /*  44 ceiling utilization */
    uint32_t util_cap_bp;                /*  48 the ceiling in force now (min <= cap <= max) */
    uint32_t burst_ms;                   /*  52 bucket depth, in ms of the rate */
    uint64_t rate_tokens_per_s;          /*  56 bucket refill rate; tokens = thread blocks */
    uint64_t fallback_rate_tokens_per_s; /*  64 rate for util_min_bp when stale (0: keep last rate) */
    uint32_t device_count;               /*  72 devices the container sees */
    uint32_t reserved0;                  /*  76 zero */
    uint8_t reserved[44];                /*  80 zero */
    uint32_t crc32;                      /* 124 CRC-32 (IEEE, zlib's) of bytes 0..123 */
};

#define STRETTO_LEDGER_MAGIC 0x4c525453u /* "STRL" */
#define STRETTO_LEDGER_VERSION 1u
#define STRETTO_MAX_DEVICES 16
#define STRETTO_MAX_SLOTS 256
#define STRETTO_LEDGER_FILE_SIZE 65536u

/* One process using the container's GPUs. pid is the pid in the container's namespace. */
struct stretto_slot {
    uint32_t pid;                          /*   0 0 = free */
    uint32_t reserved0;                    /*   4 */
    uint64_t start_time;                   /*   8 /proc/<pid>/stat starttime (clock ticks) */
    uint64_t reserved1[2];                 /*  16 */
    uint64_t bytes[STRETTO_MAX_DEVICES];   /*  32 live device bytes charged to this process */
};                                         /* 160 */

struct stretto_bucket {
    uint64_t rate_tokens_per_s;  /*  0 0 = not limited */
    int64_t tokens_micro;        /*  8 balance in micro-tokens, negative = debt */
    uint64_t last_refill_ns;     /* 16 CLOCK_MONOTONIC */
    int64_t burst_micro;         /* 24 balance ceiling */
    uint64_t consumed_tokens;    /* 32 total tokens charged (thread blocks) */
    uint64_t launches;           /* 40 total launches charged */
    uint64_t throttled_ns;       /* 48 total time launches waited for tokens */
    uint64_t applied_generation; /* 56 control-file generation last applied */
};                               /* 64 */

struct stretto_ledger {
    uint32_t magic;              /*    0 set last, after initialisation */
    uint16_t version;            /*    4 */
    uint16_t reserved0;          /*    6 */
    uint32_t size;               /*    8 STRETTO_LEDGER_FILE_SIZE */
    uint32_t max_slots;          /*   12 */
    uint32_t max_devices;        /*   16 */
    uint32_t reserved1;          /*   20 */
    uint64_t reserved2[5];       /*   24 */
    uint8_t mutex[64];           /*   64 pthread_mutex_t, process-shared + robust (slots, reaping) */
    struct stretto_bucket bucket;                /*  128 */
    uint64_t mem_limit[STRETTO_MAX_DEVICES];     /*  192 0 = no cap on that device */
    uint64_t mem_used[STRETTO_MAX_DEVICES];      /*  320 reserved + allocated bytes */
    uint64_t mem_peak[STRETTO_MAX_DEVICES];      /*  448 high-water mark of mem_used */
    uint32_t controller_pid;     /*  576 standalone mode: the process running the local controller */
    uint32_t reserved3;          /*  580 */
    uint64_t controller_start;   /*  584 its start time */
    uint64_t oom_events;         /*  592 allocations refused for the cap */
    uint64_t reserved4[5];       /*  600 */
    struct stretto_slot slots[STRETTO_MAX_SLOTS]; /* 640 */
};

#endif /* STRETTO_CONTROL_H */
