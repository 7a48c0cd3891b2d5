/*
 * rtld_next.c -- regression test for forwarding dlsym(RTLD_NEXT, ...) through the shim's dlsym.
 * librtld_a.so and librtld_b.so both define foo(); A asks for "the foo after me", which must be
 * B's (2). A forwarder that is not a tail call would make glibc answer relative to the shim.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

#define EXPORT __attribute__((visibility("default")))

#if defined(PART_A)
EXPORT int foo(void) { return 1; }
EXPORT int a_next_foo(void) {
    int (*next)(void) = (int (*)(void))dlsym(RTLD_NEXT, "foo");
    return next ? next() : -1;
}
#elif defined(PART_B)
EXPORT int foo(void) { return 2; }
#elif defined(PART_MAIN)
int a_next_foo(void);
int main(void) {
    printf("%d\n", a_next_foo());
    return 0;
}
#endif
