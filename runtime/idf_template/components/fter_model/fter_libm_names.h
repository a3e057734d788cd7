/**
 * @file fter_libm_names.h
 * @brief Gives the float math of this component the names fter_expf, fter_erff, ... .
 *
 * Every source of the fter_model component is compiled with `-include fter_libm_names.h`, so
 * fter_math.c and fter_round.c define fter_expf & co. and the generated kernels call those.
 * Why not the C library's libm: our functions use binary32 arithmetic only, so with
 * -ffp-contract=off the ESP32-S3 (whose FPU rounds +, -, *, / correctly) should compute the
 * same bits as the host-simulated and Xtensa-simulated builds, and main.c can compare its logits
 * with theirs.  Why rename: defining expf itself would clash with newlib's libm at link time.
 * The library's <math.h> is included first, under its own names (its include guard keeps the
 * sources' later #include <math.h> out); only then are the names redirected, so no libc header
 * is ever read with these macros active.  Code outside this component (main/) uses newlib.
 */
#ifndef FTER_LIBM_NAMES_H_
#define FTER_LIBM_NAMES_H_

#include <math.h>

#undef expf
#define expf fter_expf
#undef logf
#define logf fter_logf
#undef log2f
#define log2f fter_log2f
#undef powf
#define powf fter_powf
#undef erff
#define erff fter_erff
#undef tanhf
#define tanhf fter_tanhf
#undef sqrtf
#define sqrtf fter_sqrtf
#undef fabsf
#define fabsf fter_fabsf
#undef floorf
#define floorf fter_floorf
#undef ceilf
#define ceilf fter_ceilf
#undef truncf
#define truncf fter_truncf
#undef roundf
#define roundf fter_roundf
#undef nearbyintf
#define nearbyintf fter_nearbyintf
#undef rintf
#define rintf fter_rintf
#undef fmaxf
#define fmaxf fter_fmaxf
#undef fminf
#define fminf fter_fminf

float fter_expf(float x);
float fter_logf(float x);
float fter_log2f(float x);
float fter_powf(float x, float y);
float fter_erff(float x);
float fter_tanhf(float x);
float fter_sqrtf(float x);
float fter_fabsf(float x);
float fter_floorf(float x);
float fter_ceilf(float x);
float fter_truncf(float x);
float fter_roundf(float x);
float fter_nearbyintf(float x);
float fter_rintf(float x);
float fter_fmaxf(float x, float y);
float fter_fminf(float x, float y);

#endif /* FTER_LIBM_NAMES_H_ */
