/* fter_parallel_for (fter_parallel.h) on ESP-IDF: the second worker is a FreeRTOS task pinned to
 * core 1, started on the first call, at the caller's priority, with the stack the main task has
 * (TVM's kernels keep buffers < 1 KiB on the stack).
 *
 * Handshake per split stage, with direct-to-task notifications (each one is a give/take pair, and
 * FreeRTOS's SMP port orders memory across it): the caller posts (fn, ctx) and notifies the
 * worker, runs worker 0's half, then waits for the worker's notification that its half is done.
 * The caller's task notification is used for that wait only while a model runs.
 *
 * fter_worker_id() compares task handles (not core ids: an unpinned caller may itself run on
 * core 1). Not verified on silicon here: this file is compile-checked against stub headers and
 * run on the host through the tests' pthread-backed FreeRTOS stand-in (tests/fake_idf). */
#include <stddef.h>

#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#include "fter_parallel.h"

#if FTER_WORKERS > 1
#ifndef FTER_WORKER_STACK_BYTES
#define FTER_WORKER_STACK_BYTES 16384
#endif
#define FTER_WORKER_CORE 1

static TaskHandle_t worker_task;
static TaskHandle_t caller_task;
static fter_task_fn task_fn;
static void *task_ctx;

static void worker_main(void *unused) {
  (void)unused;
  for (;;) {
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY); /* a half was posted */
    task_fn(1, task_ctx);
    xTaskNotifyGive(caller_task); /* ... and is done */
  }
}

int32_t fter_worker_id(void) {
  return worker_task != NULL && xTaskGetCurrentTaskHandle() == worker_task ? 1 : 0;
}

void fter_parallel_for(fter_task_fn fn, void *ctx) {
  if (worker_task == NULL &&
      xTaskCreatePinnedToCore(worker_main, "fter_worker", FTER_WORKER_STACK_BYTES, NULL,
                              uxTaskPriorityGet(NULL), &worker_task, FTER_WORKER_CORE) != pdPASS) {
    __builtin_trap(); /* no memory for the worker's stack: a panic (with backtrace) beats a hang */
  }
  caller_task = xTaskGetCurrentTaskHandle();
  task_fn = fn;
  task_ctx = ctx;
  xTaskNotifyGive(worker_task);
  fn(0, ctx);
  ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
}
#endif
