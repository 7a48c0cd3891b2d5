/*
 * control_tool.c -- `stretto-control`: the C side of the control-file and ledger layout tests.
 *   stretto-control layout          JSON: sizes and offsets of both structs
 *   stretto-control read FILE       JSON of a control file as the shim decodes it, or the refusal
 *   stretto-control write FILE k=v  encode a control file (fields by name; the rest zero)
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "stretto_control.h"

int control_decode(const void *buf, size_t len, struct stretto_control *out, const char **why);
void control_encode(struct stretto_control *c);
int control_read_file(const char *path, struct stretto_control *out, const char **why);

#define CONTROL_FIELDS(X)                 \
    X(magic) X(version) X(size) X(generation) X(written_unix_ns) X(stale_after_ms) X(flags) \
    X(memory_limit_bytes) X(util_min_bp) X(util_max_bp) X(util_cap_bp) X(burst_ms) X(rate_tokens_per_s) \
    X(fallback_rate_tokens_per_s) X(device_count) X(reserved0) X(reserved) X(crc32)

#define BUCKET_FIELDS(X) \
    X(rate_tokens_per_s) X(tokens_micro) X(last_refill_ns) X(burst_micro) X(consumed_tokens) X(launches) \
    X(throttled_ns) X(applied_generation)

#define LEDGER_FIELDS(X) \
    X(magic) X(version) X(size) X(max_slots) X(max_devices) X(mutex) X(bucket) X(mem_limit) X(mem_used) \
    X(mem_peak) X(controller_pid) X(controller_start) X(oom_events) X(slots)

#define SLOT_FIELDS(X) X(pid) X(start_time) X(bytes)

static void layout(void) {
    printf("{\"sizes\": {\"control\": %zu, \"bucket\": %zu, \"ledger\": %zu, \"ledger_file\": %u, \"slot\": %zu}",
           sizeof(struct stretto_control), sizeof(struct stretto_bucket), sizeof(struct stretto_ledger),
           STRETTO_LEDGER_FILE_SIZE, sizeof(struct stretto_slot));
    printf(", \"control\": {\"_\": 0");
#define C(f) printf(", \"%s\": [%zu, %zu]", #f, offsetof(struct stretto_control, f), sizeof(((struct stretto_control *)0)->f));
    CONTROL_FIELDS(C)
    printf("}, \"bucket\": {\"_\": 0");
#define B(f) printf(", \"%s\": [%zu, %zu]", #f, offsetof(struct stretto_bucket, f), sizeof(((struct stretto_bucket *)0)->f));
    BUCKET_FIELDS(B)
    printf("}, \"ledger\": {\"_\": 0");
#define L(f) printf(", \"%s\": [%zu, %zu]", #f, offsetof(struct stretto_ledger, f), sizeof(((struct stretto_ledger *)0)->f));
    LEDGER_FIELDS(L)
    printf("}, \"slot\": {\"_\": 0");
#define S(f) printf(", \"%s\": [%zu, %zu]", #f, offsetof(struct stretto_slot, f), sizeof(((struct stretto_slot *)0)->f));
    SLOT_FIELDS(S)
    printf("}, \"constants\": {\"control_magic\": %u, \"control_version\": %u, \"ledger_magic\": %u, "
           "\"ledger_version\": %u, \"max_devices\": %d, \"max_slots\": %d, \"flag_memory\": %u, \"flag_util\": %u}}\n",
           STRETTO_CONTROL_MAGIC, STRETTO_CONTROL_VERSION, STRETTO_LEDGER_MAGIC, STRETTO_LEDGER_VERSION,
           STRETTO_MAX_DEVICES, STRETTO_MAX_SLOTS, STRETTO_CONTROL_FLAG_MEMORY_LIMITED,
           STRETTO_CONTROL_FLAG_UTIL_LIMITED);
}

static int read_cmd(const char *path) {
    struct stretto_control c;
    const char *why = NULL;
    if (control_read_file(path, &c, &why) != 0) {
        printf("{\"refused\": \"%s\"}\n", why);
        return 1;
    }
    printf("{\"generation\": %llu, \"written_unix_ns\": %llu, \"stale_after_ms\": %u, \"flags\": %u, "
           "\"memory_limit_bytes\": %llu, \"util_min_bp\": %u, \"util_max_bp\": %u, \"util_cap_bp\": %u, "
           "\"burst_ms\": %u, \"rate_tokens_per_s\": %llu, \"fallback_rate_tokens_per_s\": %llu, "
           "\"device_count\": %u}\n",
           (unsigned long long)c.generation, (unsigned long long)c.written_unix_ns, c.stale_after_ms, c.flags,
           (unsigned long long)c.memory_limit_bytes, c.util_min_bp, c.util_max_bp, c.util_cap_bp, c.burst_ms,
           (unsigned long long)c.rate_tokens_per_s, (unsigned long long)c.fallback_rate_tokens_per_s,
           c.device_count);
    return 0;
}

static int write_cmd(const char *path, int argc, char **argv) {
    struct stretto_control c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL) return 2;
        *eq = '\0';
        unsigned long long v = strtoull(eq + 1, NULL, 10);
        const char *k = argv[i];
        if (!strcmp(k, "generation")) c.generation = v;
        else if (!strcmp(k, "written_unix_ns")) c.written_unix_ns = v;
        else if (!strcmp(k, "stale_after_ms")) c.stale_after_ms = (uint32_t)v;
        else if (!strcmp(k, "flags")) c.flags = (uint32_t)v;
        else if (!strcmp(k, "memory_limit_bytes")) c.memory_limit_bytes = v;
        else if (!strcmp(k, "util_min_bp")) c.util_min_bp = (uint32_t)v;
        else if (!strcmp(k, "util_max_bp")) c.util_max_bp = (uint32_t)v;
        else if (!strcmp(k, "util_cap_bp")) c.util_cap_bp = (uint32_t)v;
        else if (!strcmp(k, "burst_ms")) c.burst_ms = (uint32_t)v;
        else if (!strcmp(k, "rate_tokens_per_s")) c.rate_tokens_per_s = v;
        else if (!strcmp(k, "fallback_rate_tokens_per_s")) c.fallback_rate_tokens_per_s = v;
        else if (!strcmp(k, "device_count")) c.device_count = (uint32_t)v;
        else return 2;
    }
    control_encode(&c);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(&c, sizeof c, 1, f) != 1) return 1;
    return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "layout")) {
        layout();
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "read")) return read_cmd(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "write")) return write_cmd(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: stretto-control layout | read FILE | write FILE key=value...\n");
    return 2;
}
