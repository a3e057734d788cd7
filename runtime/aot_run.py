"""The C of `<model>_run`: the call table and the loop that runs it on one or two workers.

Kept apart from `runtime.aot` (descriptors, weights) because this is where the dual-core
schedule lives. Every kernel call goes through `fter_invoke(call, stage, begin, end)`, which
appends the three int32 range arguments of split kernels (`runtime.split_workers`). With
`FTER_WORKERS=1` (the default) a split kernel is called once with `stage = -1` and the full
range, i.e. exactly as before the split. With `FTER_WORKERS=2` every stage is called on its
own: a split stage through `fter_parallel_for` (fter_parallel.h) as two halves
`[0, FTER_SPLIT_POINT(extent))` and `[FTER_SPLIT_POINT(extent), extent)`, a stage that is not
split whole on the calling worker. `fter_parallel_for` returns only when both halves did, so
each stage boundary is a barrier: the next stage may read anything either half wrote.
"""

from __future__ import annotations

from .program import AotProgram

RANGE_ARGS = 3   # stage, begin, end

PROFILE_MACROS = """/* Split stages (two workers): FTER_PROFILE_TASK_BEGIN/END(worker) bracket each half,
 * FTER_PROFILE_SECTION_END() follows both; a serial build uses them to count the two-core
 * critical path (runtime/sim/model_main.c). */
#ifndef FTER_PROFILE_TASK_BEGIN
#ifdef FTER_PROFILE
void fter_profile_task_begin(int worker);
void fter_profile_task_end(int worker);
void fter_profile_section_end(void);
#define FTER_PROFILE_TASK_BEGIN(w) fter_profile_task_begin(w)
#define FTER_PROFILE_TASK_END(w) fter_profile_task_end(w)
#define FTER_PROFILE_SECTION_END() fter_profile_section_end()
#else
#define FTER_PROFILE_TASK_BEGIN(w) ((void)0)
#define FTER_PROFILE_TASK_END(w) ((void)0)
#define FTER_PROFILE_SECTION_END() ((void)0)
#endif
#endif"""


def call_table(p: AotProgram) -> str:
    """`fter_kernel_names`, each call's argument array and stage extents, and `fter_calls`."""
    names = [c.name for c in p.calls] + (["copy_output"] if p.copy_output else [])
    lines = ["const char *const fter_kernel_names[FTER_NUM_CALLS] = {\n"
             + "".join(f"  \"{n}\",\n" for n in names) + "};"]
    if not p.calls:
        return "\n".join(lines)
    for c in p.calls:
        refs = ", ".join(f"(DLTensor *)&fter_{a}" for a in c.args)
        lines.append(f"static DLTensor *const fter_args{c.index}[] = {{{refs}}};")
        if c.stages:
            lines.append(f"static const int32_t fter_stages{c.index}[] = "
                         f"{{{', '.join(map(str, c.stages))}}};  /* 0: not split */")
    lines.append("\nstatic const struct fter_call {\n  fter_packed_fn fn;\n  int32_t num_args;\n"
                 "  DLTensor *const *args;\n  int32_t num_stages;  /* 0: takes no range */\n"
                 "  const int32_t *stages;  /* per stage the extent of its split loop */\n"
                 "} fter_calls[FTER_NUM_KERNELS] = {")
    for c in p.calls:
        stages = f"{len(c.stages)}, fter_stages{c.index}" if c.stages else "0, NULL"
        lines.append(f"  {{{c.symbol}, {len(c.args)}, fter_args{c.index}, {stages}}},"
                     f"  /* {c.index}: {c.name} */")
    lines.append("};")
    return "\n".join(lines)


def invoke_functions(p: AotProgram) -> str:
    """`fter_invoke` and `fter_run_call` (one kernel call on one or two workers)."""
    if not p.calls:
        return ""
    max_args = max(len(c.args) for c in p.calls) + RANGE_ARGS
    return f"""#include "fter_parallel.h"
#ifndef FTER_SPLIT_POINT  /* where worker 1's half of a split loop starts (tests move it) */
#define FTER_SPLIT_POINT(extent) (((extent) + 1) / 2)
#endif
#define FTER_ALL_STAGES (-1)
#define FTER_FULL_RANGE 0x7fffffff

/* One packed call of c over [begin, end) of stage `stage` (FTER_ALL_STAGES: every stage). */
static int32_t fter_invoke(const struct fter_call *c, int32_t stage, int32_t begin, int32_t end) {{
  TVMFFIAny args[{max_args}];
  TVMFFIAny result;
  int32_t j, n = c->num_args;
  for (j = 0; j < n; ++j) fter_ffi_set_tensor(&args[j], c->args[j]);
  if (c->num_stages > 0) {{
    fter_ffi_set_int(&args[n++], stage);
    fter_ffi_set_int(&args[n++], begin);
    fter_ffi_set_int(&args[n++], end);
  }}
  result.type_index = kTVMFFINone;
  result.zero_padding = 0;
  result.v_int64 = 0;
  return c->fn(NULL, args, n, &result);
}}

#if FTER_WORKERS > 1
void fter_kernels_init(void);  /* the micro-kernels' decode tables (fter_kernels.h) */

struct fter_halves {{
  const struct fter_call *call;
  int32_t stage, split, extent;
  int32_t rc[2];
}};

/* Worker w's half of a split stage: [0, split) or [split, extent). */
static void fter_half(int32_t w, void *ctx) {{
  struct fter_halves *h = (struct fter_halves *)ctx;
  FTER_PROFILE_TASK_BEGIN(w);
  h->rc[w] = fter_invoke(h->call, h->stage, w == 0 ? 0 : h->split, w == 0 ? h->split : h->extent);
  FTER_PROFILE_TASK_END(w);
}}

static int32_t fter_run_call(const struct fter_call *c) {{
  int32_t s, rc = 0;
  if (c->num_stages == 0) return fter_invoke(c, FTER_ALL_STAGES, 0, FTER_FULL_RANGE);
  for (s = 0; s < c->num_stages && rc == 0; ++s) {{
    if (c->stages[s] == 0) {{
      rc = fter_invoke(c, s, 0, FTER_FULL_RANGE);
    }} else {{
      struct fter_halves h;
      h.call = c;
      h.stage = s;
      h.extent = c->stages[s];
      h.split = FTER_SPLIT_POINT(h.extent);
      h.split = h.split < 0 ? 0 : (h.split > h.extent ? h.extent : h.split);
      h.rc[0] = h.rc[1] = 0;
      fter_parallel_for(fter_half, &h);
      FTER_PROFILE_SECTION_END();
      rc = h.rc[0] != 0 ? h.rc[0] : h.rc[1];
    }}
  }}
  return rc;
}}
#else
static int32_t fter_run_call(const struct fter_call *c) {{
  return fter_invoke(c, FTER_ALL_STAGES, 0, FTER_FULL_RANGE);
}}
#endif"""


def run_function(p: AotProgram, name: str, bind_io: list[str]) -> str:
    """`<name>_run` and `<name>_last_error`."""
    body = [f"static const char *fter_error = NULL;\n\nconst char *{name}_last_error(void) {{\n"
            "  return fter_error;\n}\n",
            f"int {name}_run(const float *input, float *output) {{"]
    if p.calls:
        body.append("  int32_t i, rc;")
    body += bind_io + ["  fter_error = NULL;"]
    if p.calls:
        body.append("""#if FTER_WORKERS > 1
  {  /* decode tables built here, before two workers could both find them missing */
    static int tables_built = 0;
    if (!tables_built) fter_kernels_init();
    tables_built = 1;
  }
#endif
  for (i = 0; i < FTER_NUM_KERNELS; ++i) {
    const struct fter_call *c = &fter_calls[i];
    FTER_FENCE_ARENA(c);
    FTER_PROFILE_BEGIN(i);
    rc = fter_run_call(c);
    FTER_PROFILE_END(i, FTER_KIND_KERNEL);
    if (rc != 0) {
      FTER_UNFENCE_ARENA();
      fter_error = fter_kernel_names[i];
      return rc;
    }
  }
  FTER_UNFENCE_ARENA();""")
    if p.copy_output:
        out = p.tensors[p.output]
        body.append(f"""  {{  /* the output is not a kernel's own buffer: copy it out */
    const uint8_t *src = (const uint8_t *)fter_{out.name}.data;
    uint8_t *dst = (uint8_t *)output;
    uint32_t k;
    FTER_PROFILE_BEGIN({len(p.calls)});
    for (k = 0; k < {out.nbytes}u; ++k) dst[k] = src[k];
    FTER_PROFILE_END({len(p.calls)}, FTER_KIND_COPY);
  }}""")
    body.append("  return 0;\n}")
    return "\n".join(body)
