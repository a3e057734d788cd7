/* The esp32s3 simulator build's float division: softfloat.c's (its long division runs on the
 * LX7's QUOU through __udivsi3 in lx7_helpers.S), where Debian's libgcc would take about 460
 * instructions a call.  Every other float helper of this build is the FPU's (lx7_helpers.S).
 * ESP-IDF's hard-float compiler divides with the FPU's own sequence instead. */
#define FTER_SOFTFLOAT_DIV_ONLY 1
#include "../../libc/softfloat.c"
