/* Bit views of binary32 values, shared by the libc sources.  A union
 * instead of memcpy: the freestanding build has no builtin memcpy to inline
 * (-fno-builtin), and union punning is defined behaviour in C99. */
#ifndef FTER_BITS_H_
#define FTER_BITS_H_

#include <stdint.h>

typedef union {
  float f;
  uint32_t u;
} fter_f32bits;

static inline uint32_t bits_of(float f) {
  fter_f32bits b;
  b.f = f;
  return b.u;
}

static inline float from_bits(uint32_t u) {
  fter_f32bits b;
  b.u = u;
  return b.f;
}

#endif /* FTER_BITS_H_ */
