/* Runner of a generated model on the host or in the Xtensa ISS: reads the input file, runs
 * fter_model_run, writes the logits, and (with FTER_PROFILE) reports cycles per kernel call as
 * "FTER_COUNT k<index> <cycles>" lines that runtime.host_sim / runtime.xtensa_sim parse. */
#include "harness.h"
#include "fter_runtime.h"
#include "fter_kernels.h"
#include "fter_model.h"
#include "fter_parallel.h"

static float fter_in[FTER_INPUT_SIZE], fter_out[FTER_OUTPUT_SIZE];

#ifdef FTER_PROFILE
/* "<prefix><index>" without printf (none on the bare-metal builds). */
static void count_call(char prefix, int idx, uint32_t value) {
  char name[16], digits[8];
  int i = 0, n = 0;
  name[i++] = prefix;
  do { digits[n++] = (char)('0' + idx % 10); idx /= 10; } while (idx > 0 && n < 7);
  while (n > 0) name[i++] = digits[--n];
  name[i] = '\0';
  fter_count(name, value);
}

static uint32_t fter_t0;
#ifdef FTER_MICRO_TIMING
/* Cycles spent inside the micro-kernels per call ("m<index>", runtime/kernels/kernel_dispatch.c). */
extern uint32_t fter_micro_cycles;
static uint32_t fter_m0;
#endif
#ifdef FTER_PIE_COUNT
/* C-emulated PIE instructions per call ("p<index>", runtime/kernels/pie/fter_pie.h): what the
 * LX7 would execute as PIE, counted on cores that only emulate it. */
extern FTER_THREAD_LOCAL uint32_t fter_pie_instructions;
static uint32_t fter_p0;
#endif
/* Two-worker builds: per split stage, the cycles of the shorter half ("s<index>", summed over
 * the call's stages). Run serially (the simulators), the call's cycles minus these are what two
 * cores would take: per stage the longer half, plus everything outside the halves. */
static uint32_t fter_task_t0[2], fter_task_dt[2], fter_saved;
void fter_profile_task_begin(int w) { fter_task_t0[w] = fter_cycles(); }
void fter_profile_task_end(int w) { fter_task_dt[w] = fter_cycles() - fter_task_t0[w]; }
void fter_profile_section_end(void) {
  fter_saved += fter_task_dt[0] < fter_task_dt[1] ? fter_task_dt[0] : fter_task_dt[1];
  fter_task_dt[0] = fter_task_dt[1] = 0;
}

void fter_profile_begin(int idx) {
  (void)idx;
  fter_saved = 0;
#ifdef FTER_PIE_COUNT
  fter_p0 = fter_pie_instructions;
#endif
#ifdef FTER_MICRO_TIMING
  fter_m0 = fter_micro_cycles;
#endif
  fter_t0 = fter_cycles();
}
void fter_profile_end(int idx, int kind) {
  uint32_t dt = fter_cycles() - fter_t0;
  (void)kind;
  count_call('k', idx, dt);
  if (fter_saved != 0) count_call('s', idx, fter_saved);
#ifdef FTER_MICRO_TIMING
  if (fter_micro_cycles != fter_m0) count_call('m', idx, fter_micro_cycles - fter_m0);
#endif
#ifdef FTER_PIE_COUNT
  if (fter_pie_instructions != fter_p0) count_call('p', idx, fter_pie_instructions - fter_p0);
#endif
}
#endif

int main(void) {
  if (fter_read_input(fter_in, sizeof fter_in) != 0) return 2;
  /* the kernels' tables before the run, as the ESP-IDF app's main does at boot, reported as
   * "setup" (the runners leave it out of an inference's count) */
  {
    uint32_t t0 = fter_cycles();
    fter_kernels_init();
    fter_count("setup", fter_cycles() - t0);
  }
  if (fter_model_run(fter_in, fter_out) != 0) {
    fter_log("FAILED ");
    fter_log(fter_model_last_error());
    fter_log(" ");
    fter_log(fter_last_error());
    fter_log("\n");
    return 3;
  }
  if (fter_write_output(fter_out, sizeof fter_out) != 0) return 4;
  fter_count("workspace_peak", (uint32_t)fter_workspace_peak());
  return 0;
}
