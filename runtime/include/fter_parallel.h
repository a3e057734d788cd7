/**
 * @file fter_parallel.h
 * @brief The worker interface the generated model C sees: run a task on two workers (cores) and
 * wait for both.
 *
 * The model (runtime/aot_run.py) splits each kernel stage with independent iterations into two
 * halves and runs them through fter_parallel_for; everything else runs on the calling worker.
 * FTER_WORKERS (1 or 2, default 1) is the build's choice; with 1 nothing here is called and
 * fter_worker_id() is the constant 0. Providers, chosen at build time:
 *   - FTER_PARALLEL_PTHREAD: a second POSIX thread (host-sim; runtime/libc/fter_parallel.c);
 *   - FTER_PARALLEL_FREERTOS: a FreeRTOS task pinned to core 1 (the ESP-IDF component's
 *     fter_parallel_freertos.c);
 *   - neither: serial -- worker 0's half, then worker 1's, on the one core (the Xtensa
 *     simulators, which count each half to report the two-core critical path).
 */
#ifndef FTER_PARALLEL_H_
#define FTER_PARALLEL_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef FTER_WORKERS
#define FTER_WORKERS 1
#endif
#if FTER_WORKERS != 1 && FTER_WORKERS != 2
#error "FTER_WORKERS must be 1 or 2"
#endif

/** A task: called once with worker 0 and once with worker 1. */
typedef void (*fter_task_fn)(int32_t worker, void *ctx);

/**
 * @brief Runs fn(0, ctx) on the calling worker and fn(1, ctx) on the second one, and returns
 * when both have returned (everything either wrote is then visible to the caller).
 * Not re-entrant: one model runs at a time, and only from one caller.
 */
void fter_parallel_for(fter_task_fn fn, void *ctx);

#if FTER_WORKERS > 1
/** @brief The worker running the caller: 0 (the model's caller) or 1; indexes per-worker scratch. */
int32_t fter_worker_id(void);
#else
#define fter_worker_id() 0
#endif

/* Emulated CPU state (the PIE registers on cores without PIE) is per thread where two threads
 * really run at once; the serial provider and the real PIE need nothing. */
#if FTER_WORKERS > 1 && (defined(FTER_PARALLEL_PTHREAD) || defined(FTER_PARALLEL_FREERTOS))
#define FTER_THREAD_LOCAL __thread
#else
#define FTER_THREAD_LOCAL
#endif

#ifdef __cplusplus
}
#endif

#endif /* FTER_PARALLEL_H_ */
