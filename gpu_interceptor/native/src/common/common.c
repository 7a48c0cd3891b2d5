/* common.c -- see common.h. No CUDA, no allocation on the hot paths. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int stretto_parse_size(const char *text, uint64_t *out) {
    if (text == NULL) return -1;
    while (*text == ' ' || *text == '\t') text++;
    if (*text == '\0' || *text == '-') return -1;
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || value < 0) return -1;
    double mult = 1;
    if (*end != '\0') {
        char unit = *end++;
        int binary = 0;
        if (*end == 'i') {
            binary = 1;
            end++;
        }
        if (*end == 'B') end++;
        double base = binary ? 1024.0 : 1000.0;
        switch (unit) {
        case 'K': case 'k': mult = base; break;
        case 'M': mult = base * base; break;
        case 'G': mult = base * base * base; break;
        case 'T': mult = base * base * base * base; break;
        case 'B': mult = 1; binary = 0; break;
        default: return -1;
        }
    }
    while (*end == ' ' || *end == '\t' || *end == '\n') end++;
    if (*end != '\0') return -1;
    double bytes = value * mult;
    if (bytes >= 1.8e19) return -1;
    *out = (uint64_t)bytes;
    return 0;
}

int stretto_parse_percent_bp(const char *text, uint32_t *out) {
    if (text == NULL) return -1;
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text) return -1;
    if (*end == '%') end++;
    while (*end == ' ' || *end == '\n') end++;
    if (*end != '\0' || !(value > 0) || value > 100) return -1;
    *out = (uint32_t)(value * 100.0 + 0.5);
    return 0;
}

static uint32_t crc_table[256];
static int crc_ready;

uint32_t stretto_crc32(const void *data, size_t len) {
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
        __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
    }
    const unsigned char *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

uint64_t stretto_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t stretto_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void stretto_sleep_until_ns(uint64_t deadline_ns) {
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000ull),
                          .tv_nsec = (long)(deadline_ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Reads /proc/<pid>/stat: returns 1 and the start time, 0 if gone or a zombie, -1 if unreadable. */
static int read_stat(pid_t pid, uint64_t *start_time) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    /* The command name (field 2) may contain spaces and ')': fields restart after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] == '\0') return -1;
    char state = p[2];
    if (state == 'Z' || state == 'X' || state == 'x') return 0; /* exited, memory already gone */
    p++;
    /* p is at the space before field 3; starttime is field 22. */
    for (int field = 3; field <= 22; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL) return -1;
        if (field == 21) break;
    }
    *start_time = strtoull(p + 1, NULL, 10);
    return 1;
}

uint64_t stretto_process_start_time(pid_t pid) {
    uint64_t start = 0;
    return read_stat(pid, &start) == 1 ? start : 0;
}

int stretto_process_alive(pid_t pid, uint64_t start_time) {
    if (pid <= 0) return 0;
    uint64_t now_start = 0;
    int rc = read_stat(pid, &now_start);
    if (rc == 1) return start_time == 0 || now_start == start_time;
    if (rc == 0) return 0;
    /* /proc unreadable (hidepid, no procfs): trust kill(). */
    return kill(pid, 0) == 0 || errno == EPERM;
}
