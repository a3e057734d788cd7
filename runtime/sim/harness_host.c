/* Harness for the host build: stdio files in the working directory. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#include <stdio.h>
#include <time.h>

#include "harness.h"

static FILE *in_file, *out_file;

int fter_read_input(void *dst, size_t n) {
  if (in_file == NULL) in_file = fopen(FTER_INPUT_FILE, "rb");
  if (in_file == NULL) return -1;
  return fread(dst, 1, n, in_file) == n ? 0 : -1;
}

int fter_write_output(const void *src, size_t n) {
  if (out_file == NULL) out_file = fopen(FTER_OUTPUT_FILE, "wb");
  if (out_file == NULL) return -1;
  /* Flush each time: the program may end with a non-zero return or abort. */
  if (fwrite(src, 1, n, out_file) != n || fflush(out_file) != 0) return -1;
  return 0;
}

void fter_log(const char *msg) {
  fputs(msg, stdout);
  fflush(stdout);
}

uint32_t fter_cycles(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}
