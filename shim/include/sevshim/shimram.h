/* The RAM the shim itself uses, as one table: the BIOS's SEV secret block must not overlap any
 * of it (docs/formats.md section 4a, E062). The firmware (src/main.c) and the parser fuzzer
 * (test/fuzz_parsers.c) both take the table from here, so the fuzzer checks the real ranges.
 * Entries: the null page, the page tables, the shim's own secret page, the legacy VGA/ROM
 * hole, the payload (text..stack), the shared bounce page (C-bit clear under SEV: a secret there
 * would be readable by the host), the BIOS and vars buffers (sevshim/layout.h). */
#ifndef SEVSHIM_SHIMRAM_H
#define SEVSHIM_SHIMRAM_H
#include "sevshim/formats.h"
#include "sevshim/layout.h"
#include "sevshim/secret.h"

#define SHIM_RAM_RANGES {                                               \
    { 0, 0x1000 },                                                      \
    { SHIM_RAM_PAGETABLES, 6 * 0x1000 },                                \
    { SHIM_RAM_SECRET, SHIM_RAM_SECRET_SIZE },                          \
    { 0xA0000, 0x60000 },                                               \
    { SHIM_RAM_PAYLOAD, SHIM_RAM_PAYLOAD_END - SHIM_RAM_PAYLOAD },      \
    { SHIM_RAM_BOUNCE, SHIM_RAM_BOUNCE_SIZE },                          \
    { SHIM_RAM_BIOS_BUF, SEVSHIM_OVMF_4M_CODE_SIZE },                   \
    { SHIM_RAM_VARS_BUF, SEVSHIM_OVMF_4M_VARS_SIZE },                   \
}

#endif
