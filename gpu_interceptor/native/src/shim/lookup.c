/*
 * lookup.c -- how programs reach the wrappers: dlsym and cuGetProcAddress(_v2).
 *
 * dlsym: the exported `dlsym` (dlsym_x86_64.S) asks stretto_dlsym_lookup() first; for a hooked
 * name that the handle really provides, it returns our wrapper. Anything else tail-jumps to the
 * real dlsym with the caller's return address intact, so RTLD_NEXT keeps meaning "after the
 * caller" (a C forwarder would make it "after the shim" unless the compiler emits a sibling call).
 *
 * cuGetProcAddress: the driver answers first; if the address it returns is the real address of a
 * hooked symbol (whatever ABI version it chose for the requested cudaVersion and stream flags),
 * we hand out that symbol's wrapper. For a hooked base name whose address we do not recognise,
 * we pick the wrapper by the same version rules the driver uses.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "shim.h"

struct hook_entry {
    const char *name;
    const char *base;
    int since;
    int ptsz;
    void *wrapper;
    size_t real_offset;
};

static const struct hook_entry g_hooks[] = {
#define HOOK(s, b, v, p, ret, params) {#s, b, v, p, (void *)(s), offsetof(struct real_table, s)},
#include "hooks.def"
#undef HOOK
};
#define HOOK_COUNT (sizeof g_hooks / sizeof g_hooks[0])

/* NVML entry points the shim virtualises (nvml.c). */
STRETTO_HIDDEN void *nvml_hook_memory_info(void);
STRETTO_HIDDEN void *nvml_hook_memory_info_v2(void);
static const struct {
    const char *name;
    void *(*wrapper)(void);
} g_nvml_hooks[] = {
    {"nvmlDeviceGetMemoryInfo", nvml_hook_memory_info},
    {"nvmlDeviceGetMemoryInfo_v2", nvml_hook_memory_info_v2},
};

void *(*stretto_real_dlsym)(void *, const char *);
STRETTO_HIDDEN void *stretto_dlsym_lookup(void *handle, const char *name);

static pthread_once_t g_dlsym_once = PTHREAD_ONCE_INIT;

static void find_real_dlsym(void) {
    /* Never call dlsym from inside the shim: it is ourselves. dlvsym is not interposed. */
    static const char *versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.0"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0] && stretto_real_dlsym == NULL; i++)
        stretto_real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", versions[i]);
}

void stretto_dlsym_bootstrap(void) { pthread_once(&g_dlsym_once, find_real_dlsym); }

void *lookup_hook_by_name(const char *name) {
    if (name == NULL) return NULL;
    if (name[0] == 'c' && name[1] == 'u') {
        for (size_t i = 0; i < HOOK_COUNT; i++)
            if (strcmp(g_hooks[i].name, name) == 0) return g_hooks[i].wrapper;
    } else if (name[0] == 'n' && name[1] == 'v') {
        for (size_t i = 0; i < sizeof g_nvml_hooks / sizeof g_nvml_hooks[0]; i++)
            if (strcmp(g_nvml_hooks[i].name, name) == 0) return g_nvml_hooks[i].wrapper();
    }
    return NULL;
}

void *stretto_dlsym_lookup(void *handle, const char *name) {
    stretto_dlsym_bootstrap();
    void *wrapper = lookup_hook_by_name(name);
    if (wrapper == NULL || stretto_real_dlsym == NULL) return NULL;
    /* Only where the handle really provides the symbol: dlsym(libfoo, "cuMemAlloc_v2") stays NULL. */
    if (stretto_real_dlsym(handle, name) == NULL) return NULL;
    return wrapper;
}

static void **real_slot(const struct hook_entry *e) { return (void **)((char *)&g_real + e->real_offset); }

static void *substitute(const char *symbol, void *fn, int cudaVersion, cuuint64_t flags) {
    for (size_t i = 0; i < HOOK_COUNT; i++)
        if (*real_slot(&g_hooks[i]) == fn) return g_hooks[i].wrapper;
    /* An address we do not know, for a name we hook: choose the ABI by version and stream flag. */
    const struct hook_entry *best = NULL;
    int want_ptsz = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
    for (size_t i = 0; i < HOOK_COUNT; i++) {
        const struct hook_entry *e = &g_hooks[i];
        if (strcmp(e->base, symbol) != 0 || e->since > cudaVersion) continue;
        if (e->ptsz && !want_ptsz) continue;
        if (best == NULL || e->since > best->since || (e->ptsz && !best->ptsz)) best = e;
    }
    if (best == NULL) return fn;
    void **slot = real_slot(best);
    if (*slot == NULL) *slot = fn;
    else if (*slot != fn)
        shim_log(1, "driver returned an unknown address for %s (cudaVersion %d); wrapping as %s", symbol,
                 cudaVersion, best->name);
    return best->wrapper;
}

STRETTO_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags) {
    CUresult rc = shim_ready();
    if (rc != CUDA_SUCCESS) return rc;
    if (g_real.cuGetProcAddress == NULL) return CUDA_ERROR_NOT_FOUND;
    rc = g_real.cuGetProcAddress(symbol, pfn, cudaVersion, flags);
    if (rc == CUDA_SUCCESS && pfn != NULL && *pfn != NULL && symbol != NULL)
        *pfn = substitute(symbol, *pfn, cudaVersion, flags);
    return rc;
}

STRETTO_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                            CUdriverProcAddressQueryResult *symbolStatus) {
    CUresult rc = shim_ready();
    if (rc != CUDA_SUCCESS) return rc;
    if (g_real.cuGetProcAddress_v2 == NULL) return CUDA_ERROR_NOT_FOUND;
    rc = g_real.cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, symbolStatus);
    if (rc == CUDA_SUCCESS && pfn != NULL && *pfn != NULL && symbol != NULL)
        *pfn = substitute(symbol, *pfn, cudaVersion, flags);
    return rc;
}

STRETTO_EXPORT CUresult cuInit(unsigned int Flags) {
    CUresult rc = shim_ready();
    if (rc != CUDA_SUCCESS) return rc;
    shim_ensure_poller();
    return g_real.cuInit(Flags);
}
