/* The runtime functions TVM-generated C calls (see fter_runtime.h):
 * workspace allocation from one static arena per worker, error reporting into
 * a static buffer, and a serial TVMBackendParallelLaunch.
 *
 * Workers (fter_parallel.h): with FTER_WORKERS=2 the two halves of a split
 * kernel run at once, each allocating its own kernel-internal scratch, so
 * each worker has its own FTER_WORKSPACE_BYTES region and allocator state,
 * chosen by fter_worker_id() (no locking: a region has one user).
 *
 * Workspace: TVM allocates and frees in nested (LIFO) order inside one
 * kernel, so a bump pointer suffices.  Each block is preceded by a 16-byte
 * header (which keeps the data 16-byte aligned) linking to the block below.
 * Freeing the top block pops it; freeing a block below the top only marks
 * it, and marked blocks are popped once they reach the top, so out-of-order
 * frees waste space only temporarily. */
#include <tvm/ffi/c_api.h>
#include <tvm/runtime/c_backend_api.h>

#include "fter_parallel.h"
#include "fter_runtime.h"

#define WS_ALIGN 16u
#define WS_NONE 0xffffffffu
#define WS_MAGIC 0x46545753u /* "FTWS": catches frees of foreign pointers */
#define ERROR_BYTES 256

typedef struct {
  uint32_t below; /* header offset of the block below, or WS_NONE */
  uint32_t size;  /* bytes of the block, header included */
  uint32_t freed;
  uint32_t magic;
} ws_header;

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* Sanitized host builds: only live blocks (header + the bytes asked for) are addressable, so a
 * kernel overrunning its workspace or using it after the free is an AddressSanitizer finding. */
#define WS_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define WS_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define WS_POISON(p, n) ((void)0)
#define WS_UNPOISON(p, n) ((void)0)
#endif

typedef struct {
  uint32_t top;  /* first free byte */
  uint32_t last; /* header offset of the top block, or WS_NONE */
  uint32_t peak;
} ws_state;

static uint8_t arenas[FTER_WORKERS][FTER_WORKSPACE_BYTES] __attribute__((aligned(16)));
static ws_state states[FTER_WORKERS] = {{0, WS_NONE, 0}
#if FTER_WORKERS > 1
                                        , {0, WS_NONE, 0}
#endif
};
/* Only written when something failed (both workers failing at once would interleave messages). */
static char last_error[ERROR_BYTES];

static ws_header *header_at(uint8_t *arena, uint32_t off) { return (ws_header *)(void *)(arena + off); }

static size_t append(size_t at, const char *s) {
  while (s != NULL && *s != '\0' && at + 1 < ERROR_BYTES) last_error[at++] = *s++;
  last_error[at] = '\0';
  return at;
}

static void set_error(const char *kind, const char *msg) { append(append(append(0, kind), ": "), msg); }

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint) {
  const int32_t w = fter_worker_id();
  uint8_t *arena = arenas[w];
  ws_state *st = &states[w];
  (void)device_type;
  (void)device_id;
  (void)dtype_code_hint;
  (void)dtype_bits_hint;
  uint64_t need = ((nbytes + WS_ALIGN - 1) & ~(uint64_t)(WS_ALIGN - 1)) + sizeof(ws_header);
  if (need > (uint64_t)(FTER_WORKSPACE_BYTES - st->top)) {
    set_error("MemoryError", "workspace exhausted: raise FTER_WORKSPACE_BYTES");
    return NULL;
  }
  if (st->top == 0) WS_POISON(arena, FTER_WORKSPACE_BYTES);
  ws_header *h = header_at(arena, st->top);
  WS_UNPOISON(h, sizeof(ws_header) + (size_t)nbytes);
  h->below = st->last;
  h->size = (uint32_t)need;
  h->freed = 0;
  h->magic = WS_MAGIC;
  st->last = st->top;
  st->top += (uint32_t)need;
  if (st->top > st->peak) st->peak = st->top;
  return h + 1;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr) {
  const int32_t w = fter_worker_id();
  uint8_t *arena = arenas[w];
  ws_state *st = &states[w];
  (void)device_type;
  (void)device_id;
  uint8_t *p = (uint8_t *)ptr;
  if (p < arena + sizeof(ws_header) || p > arena + st->top) {
    set_error("ValueError", "TVMBackendFreeWorkspace: pointer not from the workspace");
    return -1;
  }
  ws_header *h = (ws_header *)(void *)p - 1;
  if (h->magic != WS_MAGIC || h->freed) {
    set_error("ValueError", "TVMBackendFreeWorkspace: not a live workspace block");
    return -1;
  }
  h->freed = 1;
  WS_POISON(p, h->size - sizeof(ws_header));
  while (st->last != WS_NONE && header_at(arena, st->last)->freed) {
    ws_header *top = header_at(arena, st->last);
    top->magic = 0;
    st->top = st->last;
    st->last = top->below;
    WS_POISON(top, sizeof(ws_header));
  }
  return 0;
}

size_t fter_workspace_peak(void) {
  size_t peak = 0;
  for (int32_t w = 0; w < FTER_WORKERS; ++w) peak = states[w].peak > peak ? states[w].peak : peak;
  return peak;
}

size_t fter_workspace_used(void) {
  size_t used = 0;
  for (int32_t w = 0; w < FTER_WORKERS; ++w) used += states[w].top;
  return used;
}

void TVMFFIErrorSetRaisedFromCStr(const char *kind, const char *message) {
  set_error(kind, message);
}

void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **message_parts,
                                       int32_t num_parts) {
  size_t at = append(append(0, kind), ": ");
  for (int32_t i = 0; i < num_parts; ++i) at = append(at, message_parts[i]);
}

const char *fter_last_error(void) { return last_error; }
void fter_clear_error(void) { last_error[0] = '\0'; }

/* A single core runs every task in order; TVM's lambdas only need their
 * task id and the group size. */
int TVMBackendParallelLaunch(FTVMParallelLambda flambda, void *cdata, int num_task) {
  TVMParallelGroupEnv env;
  env.sync_handle = NULL;
  env.num_task = num_task > 0 ? num_task : 1;
  for (int32_t i = 0; i < env.num_task; ++i) {
    int rc = flambda(i, &env, cdata);
    if (rc != 0) return rc;
  }
  return 0;
}

int TVMBackendParallelBarrier(int task_id, TVMParallelGroupEnv *penv) {
  (void)task_id;
  (void)penv;
  return 0;
}
