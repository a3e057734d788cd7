/**
 * @file string.h
 * @brief Memory functions for the freestanding Xtensa build (fter_string.c).
 * gcc emits calls to memcpy/memset for struct copies and large zeroing even
 * with -fno-builtin, so every freestanding program needs them.  The host
 * build uses the system <string.h> instead.
 */
#ifndef FTER_STRING_H_
#define FTER_STRING_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#ifdef __cplusplus
}
#endif

#endif /* FTER_STRING_H_ */
