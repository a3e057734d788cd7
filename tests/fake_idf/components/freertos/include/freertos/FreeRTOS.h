/* FreeRTOS.h stub. */
#pragma once
typedef unsigned TickType_t;
