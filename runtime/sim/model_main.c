/* Runner of a generated model on the host or in the Xtensa ISS: reads the input file, runs
 * fter_model_run, writes the logits, and (with FTER_PROFILE) reports cycles per kernel call as
 * "FTER_COUNT k<index> <cycles>" lines that runtime.host_sim / runtime.xtensa_sim parse. */
#include "harness.h"
#include "fter_runtime.h"
#include "fter_model.h"

static float fter_in[FTER_INPUT_SIZE], fter_out[FTER_OUTPUT_SIZE];

#ifdef FTER_PROFILE
static uint32_t fter_t0;
void fter_profile_begin(int idx) { (void)idx; fter_t0 = fter_cycles(); }
void fter_profile_end(int idx, int kind) {
  static char name[16] = "k";
  uint32_t dt = fter_cycles() - fter_t0;
  int i = 1, v = idx, n = 0;
  char digits[8];
  (void)kind;
  do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v > 0 && n < 7);
  while (n > 0) name[i++] = digits[--n];
  name[i] = '\0';
  fter_count(name, dt);
}
#endif

int main(void) {
  if (fter_read_input(fter_in, sizeof fter_in) != 0) return 2;
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
