/*
 * control.c -- decoding and validating the control file (layout in stretto_control.h).
 * Shared by the shim and the `stretto-control` test tool, so both sides of the layout tests run
 * exactly this code.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "../common/common.h"
#include "stretto_control.h"

_Static_assert(sizeof(struct stretto_control) == STRETTO_CONTROL_SIZE, "control file is 128 bytes");
_Static_assert(offsetof(struct stretto_control, crc32) == STRETTO_CONTROL_SIZE - 4, "crc is last");
_Static_assert(sizeof(struct stretto_ledger) <= STRETTO_LEDGER_FILE_SIZE, "ledger fits its file");
_Static_assert(offsetof(struct stretto_ledger, slots) == 640, "ledger slots offset");
_Static_assert(sizeof(struct stretto_slot) == 160, "slot size");

STRETTO_HIDDEN int control_decode(const void *buf, size_t len, struct stretto_control *out, const char **why);
STRETTO_HIDDEN void control_encode(struct stretto_control *c);
STRETTO_HIDDEN int control_read_file(const char *path, struct stretto_control *out, const char **why);

int control_decode(const void *buf, size_t len, struct stretto_control *out, const char **why) {
    struct stretto_control c;
    if (len < STRETTO_CONTROL_SIZE) {
        *why = "truncated";
        return -1;
    }
    memcpy(&c, buf, sizeof c);
    if (c.magic != STRETTO_CONTROL_MAGIC) {
        *why = "bad magic";
        return -1;
    }
    if (c.version != STRETTO_CONTROL_VERSION) {
        *why = "unsupported version";
        return -1;
    }
    if (c.size != STRETTO_CONTROL_SIZE || len != STRETTO_CONTROL_SIZE) {
        *why = "bad size";
        return -1;
    }
    if (stretto_crc32(&c, offsetof(struct stretto_control, crc32)) != c.crc32) {
        *why = "bad checksum";
        return -1;
    }
    if (c.util_min_bp > c.util_max_bp || c.util_max_bp > STRETTO_BP_FULL || c.util_cap_bp > STRETTO_BP_FULL) {
        *why = "utilization out of range";
        return -1;
    }
    if ((c.flags & STRETTO_CONTROL_FLAG_UTIL_LIMITED) && c.rate_tokens_per_s == 0) {
        *why = "zero rate";
        return -1;
    }
    *out = c;
    return 0;
}

void control_encode(struct stretto_control *c) {
    c->magic = STRETTO_CONTROL_MAGIC;
    c->version = STRETTO_CONTROL_VERSION;
    c->size = STRETTO_CONTROL_SIZE;
    c->crc32 = stretto_crc32(c, offsetof(struct stretto_control, crc32));
}

int control_read_file(const char *path, struct stretto_control *out, const char **why) {
    unsigned char buf[STRETTO_CONTROL_SIZE + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = errno == ENOENT ? "missing" : "unreadable";
        return -1;
    }
    ssize_t n = pread(fd, buf, sizeof buf, 0); /* one byte more than the layout: detects a longer file */
    close(fd);
    if (n < 0) {
        *why = "unreadable";
        return -1;
    }
    return control_decode(buf, (size_t)n, out, why);
}
