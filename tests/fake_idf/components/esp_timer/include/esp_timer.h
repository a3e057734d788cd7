/* esp_timer.h stub: microseconds since an arbitrary start, from the host's monotonic clock. */
#pragma once
#include <stdint.h>
#include <time.h>

static inline int64_t esp_timer_get_time(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}
