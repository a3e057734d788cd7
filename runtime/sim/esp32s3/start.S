/* Start code for the LX7 core of QEMU's `-M esp32s3` machine, loaded with `-kernel prog.elf`
 * (no ROM, no bootloader: QEMU's reset stub jumps to the ELF entry).  The C is lx106 code of the
 * call0 ABI; this only sets what the LX7 needs before it:
 * - VECBASE -> our vectors (an exception exits through fter_exception with its cause);
 * - PS = INTLEVEL 15, EXCM 0 (with EXCM set, zero-overhead loops run their body once);
 * - CPENABLE bit 0 (FPU) and bit 3 (PIE): silicon traps PIE without bit 3 (SPEC §7);
 * - the cache MMU: the flash image (the weights, esp32s3.ld) readable at 0x3C000000.
 * Assembled with the esp32s3 core config (runtime/esp32s3_sim.py). */

    .section .vectors, "ax"
    .align  1024
    .global _vectors
_vectors:
    .org    0x180                   /* level 2..6 interrupts, debug, NMI: never enabled */
    j       .Lexc_entry
    .org    0x1c0
    j       .Lexc_entry
    .org    0x200
    j       .Lexc_entry
    .org    0x240
    j       .Lexc_entry
    .org    0x280
    j       .Lexc_entry
    .org    0x2c0
    j       .Lexc_entry
    .org    0x300                   /* kernel exception */
    j       .Lexc_entry
    .org    0x340                   /* user exception */
    j       .Lexc_entry
    .org    0x3c0                   /* double exception */
    j       .Lexc_entry
    .org    0x400
    /* The second core (APP CPU): QEMU's esp32s3 machine always has two and would run the second
     * from an empty ROM; runtime/esp32s3_sim.py starts it here (-device loader,addr=...,cpu-num=1)
     * to wait for an interrupt that never comes. */
    .global _cpu1_park
_cpu1_park:
    waiti   15
    j       _cpu1_park

    .align  4
.Lexc_handler:                      /* l32r reaches backwards only: literal first */
    .word   fter_exception
.Lexc_entry:
    rsr.exccause a2
    rsr.epc1 a3
    l32r    a0, .Lexc_handler
    callx0  a0
1:  j       1b

    .text
    .literal_position

    .align  4
    .global _start
_start:
    movi    a1, _stack_top
    movi    a2, _vectors
    wsr.vecbase a2
    movi    a2, 0x0f
    wsr.ps  a2
    rsync
    movi    a2, 0x09
    wsr.cpenable a2
    rsync
    /* flash pages 0..255 (64 KiB each) -> 0x3C000000..: entry i of the data cache's MMU at
     * 0x600C5000 + 4 i holds the flash page number (bit 15 clear: flash, not PSRAM) */
    movi    a2, 0x600C5000
    movi    a3, 0
    movi    a4, 256
3:  s32i    a3, a2, 0
    addi    a2, a2, 4
    addi    a3, a3, 1
    bne     a3, a4, 3b
    movi    a0, fter_start_c
    callx0  a0                      /* never returns */
2:  j       2b
