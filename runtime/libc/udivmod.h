/* One shift-subtract unsigned division for the Xtensa cores' libgcc helpers, instantiated per
 * width: libgcc_lx106.c (32-bit), libgcc_divdi.c (64-bit).  `name(n, d, &rem)` returns n / d and
 * stores n % d; division by zero returns all ones with remainder n (the C result is undefined).
 * CLZ(v) counts the leading zeros of a non-zero v; SHL(v, s) is v << s for 0 <= s < width. */
#ifndef FTER_UDIVMOD_H_
#define FTER_UDIVMOD_H_

#define FTER_DEFINE_UDIVMOD(name, T, CLZ, SHL) \
  static T name(T n, T d, T *rem) {            \
    T q = 0;                                   \
    if (d == 0) {                              \
      *rem = n;                                \
      return (T) ~(T)0;                        \
    }                                          \
    if (n >= d) {                              \
      int shift = CLZ(d) - CLZ(n);             \
      d = SHL(d, shift);                       \
      for (; shift >= 0; --shift) {            \
        q <<= 1;                               \
        if (n >= d) {                          \
          n -= d;                              \
          q |= 1u;                             \
        }                                      \
        d >>= 1;                               \
      }                                        \
    }                                          \
    *rem = n;                                  \
    return q;                                  \
  }

#endif /* FTER_UDIVMOD_H_ */
