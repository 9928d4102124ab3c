/* sevshim memory map: the image parts in flash and the shim's RAM. src/layout.inc carries the
 * same numbers for nasm; keep both in sync (`make check-image` checks the footer table). */
#ifndef SEVSHIM_LAYOUT_H
#define SEVSHIM_LAYOUT_H

/* ---- flash (pflash0, layout ovmf-4m, mapped top-aligned below 4 GiB) ---- */
#define SHIM_IMAGE_BASE     0xFFC84000u  /* image offset 0 */
#define SHIM_IMAGE_SIZE     0x37C000u
#define SHIM_POLICY_GPA     0xFFFD0000u  /* image offset 0x34C000, 16 KiB, zero in the template */
#define SHIM_POLICY_SIZE    0x4000u
#define SHIM_PAYLOAD_GPA    0xFFFE0000u  /* image offset 0x35C000: the C payload (flat binary) */
#define SHIM_STAGE1_GPA     0xFFFFF000u  /* reset vector, mode switch, footer table */

/* ---- RAM (identity mapped, 2 MiB pages, 0..4 GiB) ---- */
#define SHIM_RAM_PAGETABLES 0x00010000u  /* 6 pages: PML4, PDPT, 4 PDs (stage 1 builds them) */
#define SHIM_RAM_SECRET     0x00080000u  /* SEV launch-secret area published in the footer */
#define SHIM_RAM_SECRET_SIZE 0x1000u     /* nothing else ever lives in this page */
#define SHIM_RAM_PAYLOAD    0x00100000u  /* payload link address: text, data, bss, stacks */
#define SHIM_RAM_PAYLOAD_END 0x00200000u /* the payload incl. bss must end below (link check) */
#define SHIM_RAM_BOUNCE     0x00200000u  /* shared (C-bit clear under SEV): fw_cfg DMA only */
#define SHIM_RAM_BOUNCE_SIZE 0x00200000u /* one 2 MiB page */
#define SHIM_RAM_BIOS_BUF   0x01000000u  /* 0x37C000 bytes: opt/org.sevshim/bios */
#define SHIM_RAM_VARS_BUF   0x01400000u  /* 0x84000 bytes: opt/org.sevshim/vars */

/* ---- SEV: mapped with the C-bit clear (src/sev.c); everything else is private ---- */
#define SHIM_MMIO_SHARED_BASE 0xFEC00000u /* .. 4 GiB: IOAPIC, HPET, TPM CRB, LAPIC, pflash */

/* The RAM the shim uses, as one table of struct sevshim_range (secret.h): the BIOS's SEV secret
 * block must not overlap any of it (docs/formats.md section 4a, E062). The firmware
 * (src/main.c) and the parser fuzzer (test/fuzz_parsers.c) both take it from here. Entries: the
 * null page, the page tables, the shim's secret page, the legacy VGA/ROM hole, the payload
 * (text..stack), the shared bounce page (C-bit clear under SEV: a secret there would be
 * readable by the host), the BIOS and vars buffers (sizes from formats.h). */
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
