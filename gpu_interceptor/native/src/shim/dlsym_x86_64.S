/*
 * dlsym -- the exported interposer. Asks stretto_dlsym_lookup(handle, name) for a wrapper; if
 * there is none, jumps (not calls) to the real dlsym so that glibc sees the original caller's
 * return address, which RTLD_NEXT resolution depends on.
 */
#if defined(__x86_64__)
    .text
    .globl dlsym
    .type dlsym, @function
dlsym:
    .cfi_startproc
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    pushq %rsi
    .cfi_adjust_cfa_offset 8
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    call stretto_dlsym_lookup
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %rsi
    .cfi_adjust_cfa_offset -8
    popq %rdi
    .cfi_adjust_cfa_offset -8
    testq %rax, %rax
    jnz 1f
    jmp *stretto_real_dlsym(%rip)
1:
    ret
    .cfi_endproc
    .size dlsym, .-dlsym
    .section .note.GNU-stack,"",@progbits
#else
#error "the dlsym forwarder is written for x86_64; port dlsym_x86_64.S to this architecture"
#endif
