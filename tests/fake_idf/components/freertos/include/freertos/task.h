/* task.h stub: vTaskDelay yields to nothing on the host. */
#pragma once
static inline void vTaskDelay(TickType_t ticks) { (void)ticks; }
