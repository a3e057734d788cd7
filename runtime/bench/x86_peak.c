/* Peak multiply-accumulate rates of this x86 machine, for the "gap to peak" of `fter-tvm bench`.
 *
 * Each probe runs 12 independent accumulator chains of one instruction sequence (inline asm, so
 * the compiler can neither fold nor reorder it) on every thread at once and reports the total rate:
 *   int8   vpdpbusd zmm            (AVX-512 VNNI: 64 MACs)        -- only where the CPU has it
 *   int8   vpmaddubsw + vpaddw ymm (AVX2: 32 MACs, int16 sums)    -- what our AVX2 matmul runs
 *   int16  vpmaddwd + vpaddd ymm   (AVX2: 16 MACs)                -- our AVX2 attention
 *   fp32   vfmadd231ps ymm         (8 MACs)
 * Usage: x86_peak THREADS. Output: one line per probe, "<name> <GMAC/s over all threads>". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERS 20000000L

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* accumulators: registers 0-5 (and 6-11 for the single-instruction probes); products of the
 * two-instruction probes go through 6-11; the operands are 12 and 13 */
#define SIX(op) op(0, 6) op(1, 7) op(2, 8) op(3, 9) op(4, 10) op(5, 11)
#define CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
                 "xmm9", "xmm10", "xmm11"

/* one probe: `n` iterations of the instruction sequence `seq` */
#define PROBE(name, seq)                                              \
    static void name(long n) {                                        \
        for (long i = 0; i < n; i++) __asm__ volatile(seq ::: CLOBBERS); \
    }

#define FMA(a, b) "vfmadd231ps %%ymm12, %%ymm13, %%ymm" #a "\n vfmadd231ps %%ymm12, %%ymm13, %%ymm" #b "\n"
#define MWD(a, t) "vpmaddwd %%ymm12, %%ymm13, %%ymm" #t "\n vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n"
#define MUB(a, t) "vpmaddubsw %%ymm12, %%ymm13, %%ymm" #t "\n vpaddw %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n"
#define VNNI(a, b) "vpdpbusd %%zmm12, %%zmm13, %%zmm" #a "\n vpdpbusd %%zmm12, %%zmm13, %%zmm" #b "\n"

PROBE(run_fma, SIX(FMA))                  /* 12 FMAs */
PROBE(run_maddwd, SIX(MWD) SIX(MWD))      /* 12 vpmaddwd (+ 12 vpaddd) */
PROBE(run_maddubsw, SIX(MUB) SIX(MUB))    /* 12 vpmaddubsw (+ 12 vpaddw) */
PROBE(run_vnni, SIX(VNNI))                /* 12 vpdpbusd */

typedef struct { void (*fn)(long); long n; } job_t;

static void *worker(void *arg) {
    job_t *job = arg;
    job->fn(job->n);
    return NULL;
}

/* instructions per second over `threads` threads, each running `n` iterations */
static double rate(void (*fn)(long), int insns_per_iter, int threads) {
    pthread_t tid[64];
    job_t job = {fn, ITERS};
    fn(ITERS / 10);                                   /* warm up (clock, power state) */
    double t0 = now();
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, worker, &job);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    return (double)ITERS * insns_per_iter * threads / (now() - t0);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "x86_peak: THREADS must be 1..64, got %s\n", argv[1]);
        return 2;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni"))
        printf("int8_vpdpbusd %.1f\n", rate(run_vnni, 12, threads) * 64 / 1e9);
    if (__builtin_cpu_supports("avx2")) {
        printf("int8_vpmaddubsw %.1f\n", rate(run_maddubsw, 12, threads) * 32 / 1e9);
        printf("int16_vpmaddwd %.1f\n", rate(run_maddwd, 12, threads) * 16 / 1e9);
    }
    if (__builtin_cpu_supports("fma"))
        printf("fp32_fma %.1f\n", rate(run_fma, 12, threads) * 8 / 1e9);
    return 0;
}
