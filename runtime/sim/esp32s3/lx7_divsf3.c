/* The esp32s3 simulator build's float division: softfloat.c's (its long division runs on the
 * LX7's QUOU through __udivsi3 in lx7_helpers.S), about 110 instructions a call where Debian's
 * libgcc takes about 170.  Every other float helper of this build is the FPU's (lx7_helpers.S).
 * ESP-IDF's hard-float compiler divides with the FPU's own sequence instead. */
#define FTER_SOFTFLOAT_DIV_ONLY 1
#include "../../libc/softfloat.c"
