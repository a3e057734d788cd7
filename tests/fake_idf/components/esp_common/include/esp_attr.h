/* esp_attr.h stub: EXT_RAM_BSS_ATTR as ESP-IDF defines it with
 * CONFIG_SPIRAM_ALLOW_BSS_SEG_EXTERNAL_MEMORY=y (a section its linker script maps to PSRAM). */
#pragma once
#define EXT_RAM_BSS_ATTR __attribute__((section(".ext_ram.bss.fter")))
