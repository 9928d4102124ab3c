/* sevshim memory map: where the image parts sit in flash and what the shim uses in RAM.
 * src/layout.inc carries the same numbers for nasm; keep both in sync (the build checks the
 * footer table against these values in `make check-image`).
 */
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

#endif
