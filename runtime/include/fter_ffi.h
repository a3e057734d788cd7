/**
 * @file fter_ffi.h
 * @brief Calling TVM-generated packed functions from C without a TVM runtime.
 *
 * TVM's `c` codegen emits every PrimFunc as
 *   int32_t __tvm_ffi_<name>(void *self, void *args, int32_t num_args, void *result)
 * where args points to an array of TVMFFIAny, one per buffer parameter, each
 * holding a DLTensor* (type index kTVMFFIDLTensorPtr).  The function reads
 * data, shape, strides and device.device_id from the DLTensor; it returns 0,
 * or -1 after storing a message retrievable with fter_last_error()
 * (fter_runtime.h).  The AOT executor keeps DLTensor and TVMFFIAny arrays in
 * static storage:
 *
 * @code
 *   static int64_t a_shape[2] = {64, 300};
 *   static DLTensor a_t = FTER_DLTENSOR(arena + 0, 2, a_shape, kDLFloat, 32);
 *   static DLTensor b_t = FTER_DLTENSOR(arena + 76800, 2, a_shape, kDLFloat, 32);
 *   TVMFFIAny args[2];
 *   fter_ffi_set_tensor(&args[0], &a_t);
 *   fter_ffi_set_tensor(&args[1], &b_t);
 *   if (FTER_CALL_PACKED(__tvm_ffi_f, args) != 0) fter_log(fter_last_error());
 * @endcode
 *
 * Declare the generated functions with FTER_DECLARE_PACKED(name); never
 * include this header or fter_kernels.h in TVM-generated C (it declares the
 * micro-kernels itself, without const).
 */
#ifndef FTER_FFI_H_
#define FTER_FFI_H_

#include <dlpack/dlpack.h>
#include <stdint.h>
#include <tvm/ffi/c_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Signature of every packed function TVM's C codegen emits. */
typedef int32_t (*fter_packed_fn)(void *self, void *args, int32_t num_args, void *result);

/** Declares the packed entry point `__tvm_ffi_<name>` of a generated PrimFunc. */
#define FTER_DECLARE_PACKED(name) \
  int32_t __tvm_ffi_##name(void *self, void *args, int32_t num_args, void *result)

/** Calls a packed function with a TVMFFIAny array (its length taken by sizeof). */
#define FTER_CALL_PACKED(fn, args) ((fn)(NULL, (args), (int32_t)(sizeof(args) / sizeof((args)[0])), NULL))

/**
 * Static initializer of a compact (strides NULL), CPU-resident DLTensor:
 * data pointer, rank, int64_t shape array, DLDataTypeCode and bit width.
 */
#define FTER_DLTENSOR(data, ndim, shape, code, bits) \
  {(void *)(data), {kDLCPU, 0}, (int32_t)(ndim), {(uint8_t)(code), (uint8_t)(bits), 1}, (shape), NULL, 0}

/** Static initializer of a TVMFFIAny holding a DLTensor*. */
#define FTER_FFI_TENSOR_ARG(tensor_ptr) {kTVMFFIDLTensorPtr, {0}, {.v_ptr = (void *)(tensor_ptr)}}

/** @brief Stores a DLTensor* in a TVMFFIAny (all other bytes zeroed). */
static inline void fter_ffi_set_tensor(TVMFFIAny *any, DLTensor *tensor) {
  any->type_index = kTVMFFIDLTensorPtr;
  any->zero_padding = 0;
  any->v_int64 = 0; /* clears the upper half on 32-bit targets */
  any->v_ptr = tensor;
}

/** @brief Stores an integer argument (for PrimFuncs with scalar parameters). */
static inline void fter_ffi_set_int(TVMFFIAny *any, int64_t value) {
  any->type_index = kTVMFFIInt;
  any->zero_padding = 0;
  any->v_int64 = value;
}

#ifdef __cplusplus
}
#endif

#endif /* FTER_FFI_H_ */
