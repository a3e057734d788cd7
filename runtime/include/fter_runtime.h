/**
 * @file fter_runtime.h
 * @brief The TVM runtime symbols that TVM-generated C links against, as
 * provided by runtime/libc/fter_tvm_backend.c, plus fter's own accessors.
 *
 * TVM's `c` codegen calls TVMBackendAllocWorkspace/TVMBackendFreeWorkspace
 * for intermediate buffers of 1 KiB or more and TVMFFIErrorSetRaisedFromCStrParts
 * when a (non-disabled) assertion fails; packed functions return -1 after
 * such an error.  Their declarations come from the TVM headers; this header
 * only adds fter's functions.
 */
#ifndef FTER_RUNTIME_H_
#define FTER_RUNTIME_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Size of the static workspace arena of each worker (fter_parallel.h: FTER_WORKERS of them);
 * override with -DFTER_WORKSPACE_BYTES=... */
#ifndef FTER_WORKSPACE_BYTES
#define FTER_WORKSPACE_BYTES (64 * 1024)
#endif

/**
 * @brief The message of the last error raised by generated code or the
 * runtime ("Kind: message"), or "" if none.  Static storage, truncated to
 * 255 characters; overwritten by the next error.
 */
const char *fter_last_error(void);

/** @brief Forget the last error (fter_last_error() returns "" again). */
void fter_clear_error(void);

/**
 * @brief Highest number of workspace bytes one worker had in use at once since
 * start-up, headers and alignment padding included: size FTER_WORKSPACE_BYTES from it.
 */
size_t fter_workspace_peak(void);

/** @brief Workspace bytes in use now, all workers (0 when every allocation was freed). */
size_t fter_workspace_used(void);

#ifdef __cplusplus
}
#endif

#endif /* FTER_RUNTIME_H_ */
