/* The runtime functions TVM-generated C calls (see fter_runtime.h):
 * workspace allocation from one static arena, error reporting into a static
 * buffer, and a serial TVMBackendParallelLaunch.
 *
 * Workspace: TVM allocates and frees in nested (LIFO) order inside one
 * kernel, so a bump pointer suffices.  Each block is preceded by a 16-byte
 * header (which keeps the data 16-byte aligned) linking to the block below.
 * Freeing the top block pops it; freeing a block below the top only marks
 * it, and marked blocks are popped once they reach the top, so out-of-order
 * frees waste space only temporarily. */
#include <tvm/ffi/c_api.h>
#include <tvm/runtime/c_backend_api.h>

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

static uint8_t arena[FTER_WORKSPACE_BYTES] __attribute__((aligned(16)));
static uint32_t ws_top;            /* first free byte */
static uint32_t ws_last = WS_NONE; /* header offset of the top block */
static uint32_t ws_peak;
static char last_error[ERROR_BYTES];

static ws_header *header_at(uint32_t off) { return (ws_header *)(void *)(arena + off); }

static size_t append(size_t at, const char *s) {
  while (s != NULL && *s != '\0' && at + 1 < ERROR_BYTES) last_error[at++] = *s++;
  last_error[at] = '\0';
  return at;
}

static void set_error(const char *kind, const char *msg) { append(append(append(0, kind), ": "), msg); }

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint) {
  (void)device_type;
  (void)device_id;
  (void)dtype_code_hint;
  (void)dtype_bits_hint;
  uint64_t need = ((nbytes + WS_ALIGN - 1) & ~(uint64_t)(WS_ALIGN - 1)) + sizeof(ws_header);
  if (need > (uint64_t)(FTER_WORKSPACE_BYTES - ws_top)) {
    set_error("MemoryError", "workspace exhausted: raise FTER_WORKSPACE_BYTES");
    return NULL;
  }
  if (ws_top == 0) WS_POISON(arena, FTER_WORKSPACE_BYTES);
  ws_header *h = header_at(ws_top);
  WS_UNPOISON(h, sizeof(ws_header) + (size_t)nbytes);
  h->below = ws_last;
  h->size = (uint32_t)need;
  h->freed = 0;
  h->magic = WS_MAGIC;
  ws_last = ws_top;
  ws_top += (uint32_t)need;
  if (ws_top > ws_peak) ws_peak = ws_top;
  return h + 1;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr) {
  (void)device_type;
  (void)device_id;
  uint8_t *p = (uint8_t *)ptr;
  if (p < arena + sizeof(ws_header) || p > arena + ws_top) {
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
  while (ws_last != WS_NONE && header_at(ws_last)->freed) {
    ws_header *top = header_at(ws_last);
    top->magic = 0;
    ws_top = ws_last;
    ws_last = top->below;
    WS_POISON(top, sizeof(ws_header));
  }
  return 0;
}

size_t fter_workspace_peak(void) { return ws_peak; }
size_t fter_workspace_used(void) { return ws_top; }

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
