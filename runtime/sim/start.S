/* Start code for the lx106 core of `qemu-system-xtensa -M sim` (SPEC §5).
 *
 * QEMU starts executing at the base of sysrom (0x50000000), so the .reset
 * section only jumps to _start in sysram; everything else is linked into
 * sysram by xtensa.ld and loaded there by QEMU's ELF loader.  Literals are
 * placed by hand before their use because the lx106 l32r only reaches
 * backwards (that is also why the C is built with -mtext-section-literals).
 */

    .section .reset, "ax"
    .global _reset
_reset:
    j       1f
    .align  4
.Lstart_addr:
    .word   _start
1:  l32r    a0, .Lstart_addr
    jx      a0

/* Exception vectors: without them an exception (e.g. a misaligned l32i)
 * would jump into unmapped memory and hang until the runner's timeout.
 * Each vector hands EXCCAUSE and EPC1 to fter_exception(), which prints
 * them and exits with a non-zero code.  Offsets are the lx106 ones. */
    .section .vectors, "ax"
    .align  1024
    .global _vectors
_vectors:
    .org    0x10                    /* debug */
    j       .Lexc_entry
    .org    0x20                    /* NMI */
    j       .Lexc_entry
    .org    0x30                    /* kernel */
    j       .Lexc_entry
    .org    0x50                    /* user */
    j       .Lexc_entry
    .org    0x70                    /* double */
    j       .Lexc_entry
    .align  4
.Lexc_handler:
    .word   fter_exception
.Lexc_entry:
    rsr.exccause a2
    rsr.epc1 a3
    l32r    a0, .Lexc_handler
    callx0  a0
1:  j       1b

    .text
    .align  4
.Lstack_top:
    .word   _stack_top
.Lvecbase:
    .word   _vectors
.Lcstart:
    .word   fter_start_c
    .global _start
_start:
    l32r    a1, .Lstack_top
    l32r    a2, .Lvecbase
    wsr.vecbase a2
    movi    a2, 0
    wsr.ps  a2                      /* clear EXCM (set at reset) so exceptions reach the vectors */
    rsync
    l32r    a0, .Lcstart
    callx0  a0                      /* fter_start_c never returns */
2:  j       2b
