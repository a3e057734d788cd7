/* fter_parallel_for (fter_parallel.h) for the host and for single-core targets.
 *
 * FTER_PARALLEL_PTHREAD: one persistent worker thread, started on the first call; each call is a
 * handshake under one mutex (post the task, wake the worker, run worker 0's half, wait for the
 * worker's "done"), so a ThreadSanitizer build sees every hand-over ordered by the mutex.
 * Otherwise (and not FreeRTOS, whose provider lives in the ESP-IDF component): serial, worker
 * 0's half then worker 1's, with fter_worker_id() telling the halves apart. */
#include "fter_parallel.h"

#if FTER_WORKERS > 1 && defined(FTER_PARALLEL_PTHREAD)
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static fter_task_fn task_fn;
static void *task_ctx;
static uint32_t posted, finished; /* task generations: posted by the caller, finished by worker 1 */
static int started;
static __thread int32_t worker_id;

static void *worker_main(void *unused) {
  uint32_t seen = 0;
  (void)unused;
  worker_id = 1;
  for (;;) {
    fter_task_fn fn;
    void *ctx;
    pthread_mutex_lock(&lock);
    while (posted == seen) pthread_cond_wait(&wake, &lock);
    seen = posted;
    fn = task_fn;
    ctx = task_ctx;
    pthread_mutex_unlock(&lock);
    fn(1, ctx);
    pthread_mutex_lock(&lock);
    finished = seen;
    pthread_cond_signal(&done);
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

int32_t fter_worker_id(void) { return worker_id; }

void fter_parallel_for(fter_task_fn fn, void *ctx) {
  uint32_t gen;
  if (!started) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, worker_main, NULL) != 0) {
      fputs("fter_parallel_for: cannot start the second worker thread\n", stderr);
      abort();
    }
    pthread_attr_destroy(&attr);
    started = 1;
  }
  pthread_mutex_lock(&lock);
  task_fn = fn;
  task_ctx = ctx;
  gen = ++posted;
  pthread_cond_signal(&wake);
  pthread_mutex_unlock(&lock);
  fn(0, ctx);
  pthread_mutex_lock(&lock);
  while (finished != gen) pthread_cond_wait(&done, &lock);
  pthread_mutex_unlock(&lock);
}

#elif FTER_WORKERS > 1 && !defined(FTER_PARALLEL_FREERTOS)

static int32_t current;

int32_t fter_worker_id(void) { return current; }

void fter_parallel_for(fter_task_fn fn, void *ctx) {
  current = 0;
  fn(0, ctx);
  current = 1;
  fn(1, ctx);
  current = 0;
}

#elif FTER_WORKERS == 1

/* One worker: both halves in order (the model never calls this with FTER_WORKERS=1). */
void fter_parallel_for(fter_task_fn fn, void *ctx) {
  fn(0, ctx);
  fn(1, ctx);
}

#endif
