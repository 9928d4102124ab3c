/* sevshim memory map for the layout the firmware is built for (-DSEVSHIM_LAYOUT=SYM, a row of
 * sevshim/layouts.def, set by shim/Makefile). host/layout-inc.c prints it for nasm. */
#ifndef SEVSHIM_LAYOUT_H
#define SEVSHIM_LAYOUT_H
#include "sevshim/formats.h"
/* ---- flash (pflash0, top-aligned below 4 GiB; the last 192 KiB are alike in every layout) ---- */
#define SHIM_LAYOUT_ID      SEVSHIM_PICK(SEVSHIM_LAYOUT_, SEVSHIM_LAYOUT, )
#define SHIM_IMAGE_SIZE     SEVSHIM_PICK(SEVSHIM_, SEVSHIM_LAYOUT, _CODE_SIZE)
#define SHIM_VARS_SIZE      SEVSHIM_PICK(SEVSHIM_, SEVSHIM_LAYOUT, _VARS_SIZE)
#define SHIM_IMAGE_BASE     (SEVSHIM_FLASH_TOP - SHIM_IMAGE_SIZE)  /* image offset 0 */
#define SHIM_POLICY_GPA     0xFFFD0000u  /* image end - 0x30000, 16 KiB, zero in the template */
#define SHIM_POLICY_SIZE    0x4000u
#define SHIM_PAYLOAD_GPA    0xFFFE0000u  /* image end - 0x20000: the C payload (flat binary) */
#define SHIM_STAGE1_GPA     0xFFFFF000u  /* reset vector, mode switch, footer table */

/* ---- RAM (identity mapped, 2 MiB pages, 0..4 GiB) ---- */
#define SHIM_RAM_PAGETABLES 0x00010000u  /* 6 pages: PML4, PDPT, 4 PDs (stage 1 builds them) */
#define SHIM_RAM_SECRET     0x00080000u  /* SEV launch-secret area published in the footer */
#define SHIM_RAM_SECRET_SIZE 0x1000u     /* nothing else ever lives in this page */
#define SHIM_RAM_PAYLOAD    0x00100000u  /* payload link address: text, data, bss, stacks */
#define SHIM_RAM_PAYLOAD_END 0x00200000u /* the payload incl. bss must end below (link check) */
#define SHIM_RAM_BOUNCE     0x00200000u  /* shared (C-bit clear under SEV): fw_cfg DMA only */
#define SHIM_RAM_BOUNCE_SIZE 0x00200000u /* one 2 MiB page */
#define SHIM_RAM_BIOS_BUF   0x01000000u  /* SHIM_IMAGE_SIZE bytes: opt/org.sevshim/bios */
#define SHIM_RAM_VARS_BUF   0x01400000u  /* SHIM_VARS_SIZE bytes: opt/org.sevshim/vars */
_Static_assert(SHIM_RAM_BIOS_BUF + SHIM_IMAGE_SIZE <= SHIM_RAM_VARS_BUF, "BIOS buffer overlaps");

/* ---- SEV: mapped with the C-bit clear (src/sev.c); everything else is private ---- */
#define SHIM_MMIO_SHARED_BASE 0xFEC00000u /* .. 4 GiB: IOAPIC, HPET, TPM CRB, LAPIC, pflash */

/* The RAM the shim uses, as one table of struct sevshim_range (secret.h): the BIOS's SEV secret
 * block must not overlap any of it (docs/formats.md section 4a, E062). The firmware
 * (src/main.c) and the parser fuzzer (test/fuzz_parsers.c) both take it from here. Entries: the
 * null page, the page tables, the shim's secret page, the legacy VGA/ROM hole, the payload
 * (text..stack), the shared bounce page (C-bit clear under SEV: a secret there would be
 * readable by the host), the BIOS and vars buffers (sizes of this build's layout). */
#define SHIM_RAM_RANGES {                                               \
    { 0, 0x1000 },                                                      \
    { SHIM_RAM_PAGETABLES, 6 * 0x1000 },                                \
    { SHIM_RAM_SECRET, SHIM_RAM_SECRET_SIZE },                          \
    { 0xA0000, 0x60000 },                                               \
    { SHIM_RAM_PAYLOAD, SHIM_RAM_PAYLOAD_END - SHIM_RAM_PAYLOAD },      \
    { SHIM_RAM_BOUNCE, SHIM_RAM_BOUNCE_SIZE },                          \
    { SHIM_RAM_BIOS_BUF, SHIM_IMAGE_SIZE },                             \
    { SHIM_RAM_VARS_BUF, SHIM_VARS_SIZE },                              \
}

#endif
