/**
 * @file math.h
 * @brief The float math subset that TVM's C codegen calls, implemented by
 * runtime/libc/fter_math.c in plain binary32 arithmetic.
 *
 * This header replaces the system <math.h> on every target so the host
 * build and the soft-float Xtensa build compute bit-identical results (all
 * sources are compiled with -ffp-contract=off -fno-builtin).  Accuracy,
 * measured by tests/test_kernels_c.py against correctly rounded values:
 * sqrtf, fabsf and the rounding functions are exact; expf, logf, log2f,
 * erff and tanhf stay within a few ulp (see the test for the bounds);
 * powf is accurate for small integer exponents and otherwise has a relative
 * error that grows with |y * ln x|.  Only the float versions exist; double
 * code would pull in soft-double helpers that the lx106 libgcc lacks.
 */
#ifndef FTER_MATH_H_
#define FTER_MATH_H_

#ifdef __cplusplus
extern "C" {
#endif

#define HUGE_VALF (__builtin_inff())
#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))

float expf(float x);
float logf(float x);
float log2f(float x);
float powf(float x, float y);
float erff(float x);
float tanhf(float x);
float sqrtf(float x);
float fabsf(float x);
float floorf(float x);
float ceilf(float x);
float truncf(float x);
/** Rounds half away from zero (C99 roundf). */
float roundf(float x);
/** Rounds half to even (the default rounding mode; TVM lowers round() to it). */
float nearbyintf(float x);
/** Same as nearbyintf: no floating-point exception flags exist here. */
float rintf(float x);
float fmaxf(float a, float b);
float fminf(float a, float b);

#ifdef __cplusplus
}
#endif

#endif /* FTER_MATH_H_ */
