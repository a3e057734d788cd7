/* Harness for the Xtensa simulator: QEMU semihosting through `simcall`
 * (a2 = call number, a3..a5 = arguments, result in a2), CCOUNT for timing,
 * and the C entry point called by start.S. */
#include "harness.h"

enum { SYS_EXIT = 1, SYS_READ = 3, SYS_WRITE = 4, SYS_OPEN = 5, SYS_CLOSE = 6 };
/* QEMU passes open() flags straight to the host, so these are the Linux
 * values (O_RDONLY, O_WRONLY|O_CREAT|O_TRUNC), not newlib's. */
enum { HOST_O_RDONLY = 0, HOST_O_WRITE_NEW = 0x241 };

static int32_t simcall(int32_t nr, int32_t a, int32_t b, int32_t c) {
  register int32_t a2 __asm__("a2") = nr;
  register int32_t a3 __asm__("a3") = a;
  register int32_t a4 __asm__("a4") = b;
  register int32_t a5 __asm__("a5") = c;
  __asm__ volatile("simcall" : "+r"(a2), "+r"(a3) : "r"(a4), "r"(a5) : "memory");
  return a2;
}

static size_t cstrlen(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

static int32_t in_fd = -1, out_fd = -1;

/* Semihosting read/write may transfer fewer bytes than asked: loop. */
static int xfer(int32_t nr, int32_t fd, char *p, size_t n) {
  while (n > 0) {
    int32_t got = simcall(nr, fd, (int32_t)(uintptr_t)p, (int32_t)n);
    if (got <= 0) return -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

int fter_read_input(void *dst, size_t n) {
  if (in_fd < 0) in_fd = simcall(SYS_OPEN, (int32_t)(uintptr_t)FTER_INPUT_FILE, HOST_O_RDONLY, 0);
  if (in_fd < 0) return -1;
  return xfer(SYS_READ, in_fd, (char *)dst, n);
}

int fter_write_output(const void *src, size_t n) {
  if (out_fd < 0)
    out_fd = simcall(SYS_OPEN, (int32_t)(uintptr_t)FTER_OUTPUT_FILE, HOST_O_WRITE_NEW, 0644);
  if (out_fd < 0) return -1;
  return xfer(SYS_WRITE, out_fd, (char *)(uintptr_t)src, n);
}

void fter_log(const char *msg) { xfer(SYS_WRITE, 1, (char *)(uintptr_t)msg, cstrlen(msg)); }

uint32_t fter_cycles(void) {
  uint32_t c;
  __asm__ volatile("rsr.ccount %0" : "=r"(c));
  return c;
}

static void fter_exit(int32_t code) __attribute__((noreturn));
static void fter_exit(int32_t code) {
  if (in_fd >= 0) simcall(SYS_CLOSE, in_fd, 0, 0);
  if (out_fd >= 0) simcall(SYS_CLOSE, out_fd, 0, 0);
  simcall(SYS_EXIT, code, 0, 0);
  for (;;) {
  }
}

extern int main(int argc, char **argv);
extern char _bss_start[], _bss_end[];

/* Called by start.S with a valid stack.  The whole run is reported as the
 * counter `total` so the runner can return an instruction count without
 * the program's cooperation. */
void fter_start_c(void) __attribute__((noreturn));
void fter_start_c(void) {
  for (char *p = _bss_start; p < _bss_end; ++p) *p = 0;
  uint32_t t0 = fter_cycles();
  int rc = main(0, 0);
  fter_count("total", fter_cycles() - t0);
  fter_exit(rc);
}

static void log_hex(uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  char buf[11] = "0x";
  for (int i = 0; i < 8; ++i) buf[2 + i] = digits[(v >> (28 - 4 * i)) & 15u];
  buf[10] = '\0';
  fter_log(buf);
}

/* Entered from the exception vectors in start.S. */
void fter_exception(uint32_t cause, uint32_t epc) __attribute__((noreturn));
void fter_exception(uint32_t cause, uint32_t epc) {
  fter_log("\nFTER_EXCEPTION cause=");
  fter_log_int((int32_t)cause);
  fter_log(" pc=");
  log_hex(epc);
  fter_log("\n");
  fter_exit(128 + (int32_t)(cause & 63u));
}
