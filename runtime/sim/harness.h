/**
 * @file harness.h
 * @brief I/O and timing for test programs that run unchanged on the host and
 * in the Xtensa simulator.
 *
 * The caller writes main(); this header gives it a byte-stream input, a
 * byte-stream output, a log and a cycle counter.  The host build
 * (harness_host.c) uses stdio files, the Xtensa build (harness_xtensa.c)
 * uses QEMU semihosting.  The Python runners (runtime/host_sim.py,
 * runtime/xtensa_sim.py) create the input file and collect the output file
 * in the program's working directory.
 */
#ifndef FTER_HARNESS_H_
#define FTER_HARNESS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

/**
 * @brief Under AddressSanitizer (runtime.cbuild.HOST_SANITIZE), makes only
 * bytes [begin, end) of the static test buffer @p buf (@p size bytes)
 * addressable, so a kernel touching anything before or past its operands is
 * a finding rather than a silent access to the rest of the buffer.  A no-op
 * in other builds.
 */
static inline void fter_fence(const void *buf, size_t begin, size_t end, size_t size) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(buf, size);
  ASAN_POISON_MEMORY_REGION(buf, begin);
  ASAN_POISON_MEMORY_REGION((const char *)buf + end, size - end);
#else
  (void)buf, (void)begin, (void)end, (void)size;
#endif
}

/** Input file name, relative to the program's working directory. */
#define FTER_INPUT_FILE "fter_input.bin"
/** Output file name, relative to the program's working directory. */
#define FTER_OUTPUT_FILE "fter_output.bin"

/**
 * @brief Read the next @p n bytes of the input stream into @p dst.
 * Successive calls continue where the previous one stopped.
 * @return 0 on success, -1 if the file is missing or shorter than requested.
 */
int fter_read_input(void *dst, size_t n);

/**
 * @brief Append @p n bytes from @p src to the output stream (created empty
 * on the first call).  @return 0 on success, -1 on an I/O error.
 */
int fter_write_output(const void *src, size_t n);

/** @brief Write a NUL-terminated string to stdout (no newline added). */
void fter_log(const char *msg);

/** @brief Write a signed decimal integer to stdout. */
void fter_log_int(int32_t v);

/**
 * @brief A free-running counter for timing.  Xtensa: CCOUNT, which under
 * QEMU's `-icount shift=0` advances once per 25 instructions; host:
 * nanoseconds of CLOCK_MONOTONIC.  Both wrap at 2^32; differences are valid.
 */
uint32_t fter_cycles(void);

/**
 * @brief Report a named measurement as the stdout line
 * `FTER_COUNT <name> <value>`; the runners parse these lines (and scale
 * Xtensa cycles to instructions).  @p name must not contain spaces.
 */
void fter_count(const char *name, uint32_t value);

#ifdef __cplusplus
}
#endif

#endif /* FTER_HARNESS_H_ */
