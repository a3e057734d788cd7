/* task.h stub (tests only): vTaskDelay yields to nothing on the host; tasks are POSIX threads
 * (fake_freertos.c) with one notification counter each, enough to run fter's worker glue. */
#pragma once
#include <stdint.h>
typedef struct fake_task *TaskHandle_t;
typedef void (*TaskFunction_t)(void *);
static inline void vTaskDelay(TickType_t ticks) { (void)ticks; }
BaseType_t xTaskCreatePinnedToCore(TaskFunction_t fn, const char *name, uint32_t stack_bytes,
                                   void *arg, UBaseType_t priority, TaskHandle_t *created,
                                   BaseType_t core);
TaskHandle_t xTaskGetCurrentTaskHandle(void);
UBaseType_t uxTaskPriorityGet(TaskHandle_t task);
uint32_t ulTaskNotifyTake(BaseType_t clear_on_exit, TickType_t ticks);
BaseType_t xTaskNotifyGive(TaskHandle_t task);
