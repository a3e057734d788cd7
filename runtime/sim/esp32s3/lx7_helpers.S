/* The libgcc helpers that Debian's lx106 gcc calls (its libgcc lacks them; the lx106 build gets
 * them from libc/softfloat.c and libc/libgcc_lx106.c), written with the LX7's own instructions:
 * the FPU for float add/sub/mul and conversions, quos/quou/rems/remu for division, mulsh/muluh
 * for 64-bit products.  A hard-float compiler (ESP-IDF's) emits these instructions inline; here
 * each costs a call and a return more.  IEEE single add/sub/mul round to nearest even like
 * softfloat.c and SSE, so results stay bit-identical to host-sim (NaN payloads aside, which the
 * models never produce).  Needs CPENABLE bit 0 (start.S).  call0 ABI, soft-float convention:
 * float arguments and results in a2, a3. */

    .text
    .literal_position

#define FN(name) .align 4; .global name; .type name, @function; name:

FN(__addsf3)
    wfr     f0, a2
    wfr     f1, a3
    add.s   f0, f0, f1
    rfr     a2, f0
    ret
FN(__subsf3)
    wfr     f0, a2
    wfr     f1, a3
    sub.s   f0, f0, f1
    rfr     a2, f0
    ret
FN(__mulsf3)
    wfr     f0, a2
    wfr     f1, a3
    mul.s   f0, f0, f1
    rfr     a2, f0
    ret
FN(__floatsisf)
    float.s f0, a2, 0
    rfr     a2, f0
    ret
FN(__floatunsisf)
    ufloat.s f0, a2, 0
    rfr     a2, f0
    ret
FN(__fixunssfsi)
    wfr     f0, a2
    utrunc.s a2, f0, 0
    ret

FN(__divsi3)
    quos    a2, a2, a3
    ret
FN(__udivsi3)
    quou    a2, a2, a3
    ret
FN(__modsi3)
    rems    a2, a2, a3
    ret
FN(__umodsi3)
    remu    a2, a2, a3
    ret
FN(__umulsidi3)                 /* a3:a2 = a2 * a3 (unsigned 32 x 32 -> 64) */
    muluh   a4, a2, a3
    mull    a2, a2, a3
    mov     a3, a4
    ret
FN(__muldi3)                    /* a3:a2 = (a3:a2) * (a5:a4) mod 2^64 */
    mull    a6, a2, a5
    mull    a7, a3, a4
    add     a6, a6, a7
    muluh   a7, a2, a4
    add     a3, a6, a7
    mull    a2, a2, a4
    ret
