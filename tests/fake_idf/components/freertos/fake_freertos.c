/* The FreeRTOS task calls of task.h on POSIX threads (tests only). A thread that was not created
 * here (the host's main thread, standing in for ESP-IDF's main task) gets its task record on its
 * first call. Notifications are counting, as xTaskNotifyGive/ulTaskNotifyTake are. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

struct fake_task {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  uint32_t notified;
  TaskFunction_t fn;
  void *arg;
};

static __thread struct fake_task *self;

static struct fake_task *new_task(void) {
  struct fake_task *t = calloc(1, sizeof *t);
  if (t == NULL) abort();
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->cond, NULL);
  return t;
}

static void *start(void *p) {
  self = p;
  self->fn(self->arg);
  return NULL;
}

BaseType_t xTaskCreatePinnedToCore(TaskFunction_t fn, const char *name, uint32_t stack_bytes,
                                   void *arg, UBaseType_t priority, TaskHandle_t *created,
                                   BaseType_t core) {
  pthread_t thread;
  struct fake_task *t = new_task();
  (void)name, (void)stack_bytes, (void)priority, (void)core;
  t->fn = fn;
  t->arg = arg;
  *created = t; /* before the thread runs: it may look itself up at once */
  if (pthread_create(&thread, NULL, start, t) != 0) return pdFALSE;
  pthread_detach(thread);
  return pdPASS;
}

TaskHandle_t xTaskGetCurrentTaskHandle(void) {
  if (self == NULL) self = new_task();
  return self;
}

UBaseType_t uxTaskPriorityGet(TaskHandle_t task) {
  (void)task;
  return 1;
}

uint32_t ulTaskNotifyTake(BaseType_t clear_on_exit, TickType_t ticks) {
  struct fake_task *t = xTaskGetCurrentTaskHandle();
  uint32_t n;
  (void)ticks; /* portMAX_DELAY only */
  pthread_mutex_lock(&t->lock);
  while (t->notified == 0) pthread_cond_wait(&t->cond, &t->lock);
  n = t->notified;
  t->notified = clear_on_exit ? 0 : n - 1;
  pthread_mutex_unlock(&t->lock);
  return n;
}

BaseType_t xTaskNotifyGive(TaskHandle_t t) {
  pthread_mutex_lock(&t->lock);
  ++t->notified;
  pthread_cond_signal(&t->cond);
  pthread_mutex_unlock(&t->lock);
  return pdPASS;
}
