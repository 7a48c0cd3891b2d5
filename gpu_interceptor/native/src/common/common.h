/*
 * common.h -- small helpers shared by the shim and the fake GPU libraries (each links its own
 * hidden copy): size parsing ("4Gi"), CRC-32, clocks, process identity.
 */
#ifndef STRETTO_COMMON_H
#define STRETTO_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STRETTO_HIDDEN __attribute__((visibility("hidden")))
#define STRETTO_EXPORT __attribute__((visibility("default")))

/* Parses "4294967296", "4Gi", "512Mi", "4G", "1.5Gi" into bytes. Returns 0 on success. */
STRETTO_HIDDEN int stretto_parse_size(const char *text, uint64_t *out);
/* Parses a percentage "30" or "30.5" into basis points (0..10000). Returns 0 on success. */
STRETTO_HIDDEN int stretto_parse_percent_bp(const char *text, uint32_t *out);
/* CRC-32 (IEEE 802.3, the one zlib.crc32 computes). */
STRETTO_HIDDEN uint32_t stretto_crc32(const void *data, size_t len);
STRETTO_HIDDEN uint64_t stretto_monotonic_ns(void);
STRETTO_HIDDEN uint64_t stretto_realtime_ns(void);
/* Sleeps until CLOCK_MONOTONIC reaches deadline_ns (restarts on EINTR). */
STRETTO_HIDDEN void stretto_sleep_until_ns(uint64_t deadline_ns);
/* /proc/<pid>/stat field 22 (start time in clock ticks since boot); 0 if the process is gone. */
STRETTO_HIDDEN uint64_t stretto_process_start_time(pid_t pid);
/* True if pid still runs the process that started at start_time. */
STRETTO_HIDDEN int stretto_process_alive(pid_t pid, uint64_t start_time);

#endif
