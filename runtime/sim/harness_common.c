/* Formatting shared by both harnesses: the Xtensa build has no printf. */
#include "harness.h"

static char *fmt_u32(char *end, uint32_t v) {
  *--end = '\0';
  do {
    *--end = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0);
  return end;
}

void fter_log_int(int32_t v) {
  char buf[16];
  /* Negate in unsigned arithmetic so INT32_MIN is printed correctly. */
  uint32_t mag = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
  if (v < 0) fter_log("-");
  fter_log(fmt_u32(buf + sizeof buf, mag));
}

void fter_count(const char *name, uint32_t value) {
  char buf[16];
  fter_log("FTER_COUNT ");
  fter_log(name);
  fter_log(" ");
  fter_log(fmt_u32(buf + sizeof buf, value));
  fter_log("\n");
}
