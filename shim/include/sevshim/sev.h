/* SEV mode decoding and the shim's identity page tables: pure functions, in the firmware (cpu.c
 * feeds them CPUID/MSR values) and in test/test_sev.c. AMD64 APM vol 2, 15.34 (C-bit,
 * SEV_STATUS) and vol 3, CPUID Fn8000_001F; docs/shim.md "SEV memory map". */
#ifndef SEVSHIM_SEV_H
#define SEVSHIM_SEV_H
#include <stdint.h>
#include "sevshim/errors.h"

#define SEVSHIM_CPUID_EXT_MAX    0x80000000u  /* EAX: highest extended leaf */
#define SEVSHIM_CPUID_ADDR_SIZE  0x80000008u  /* EAX[7:0]: physical address bits */
#define SEVSHIM_CPUID_SEV        0x8000001Fu  /* EAX: bit 1 SEV, 3 SEV-ES, 4 SNP; EBX: C-bit */
#define SEVSHIM_MSR_SEV_STATUS   0xC0010131u  /* bit 0 SEV, 1 SEV-ES, 2 SNP active */
#define SEVSHIM_MSR_GHCB         0xC0010130u  /* GHCB spec 56421, 2.3.1 MSR protocol */

/* GHCB MSR protocol termination request (GHCB spec 56421, "Termination Request"): GHCBInfo
 * 0x100, reason set in bits 15:12 (sevshim: 0xA), code in bits 23:16 (docs/errors.md). */
#define SEVSHIM_GHCB_TERM_SET     0xAu
#define SEVSHIM_GHCB_TERM_VC      0x1Du   /* #VC (vector 29) taken: SEV-ES/SNP, no GHCB */
#define SEVSHIM_GHCB_TERM_ES      0x81u   /* decoder: SEV-ES active (E081) */
#define SEVSHIM_GHCB_TERM_SNP     0x82u   /* decoder: SEV-SNP active (E082) */
#define SEVSHIM_GHCB_TERM(code)   (0x100u | (SEVSHIM_GHCB_TERM_SET << 12) | ((uint32_t)(code) << 16))

enum sevshim_sev_mode { SEVSHIM_SEV_NONE = 0, SEVSHIM_SEV_SEV, SEVSHIM_SEV_ES, SEVSHIM_SEV_SNP };

/* Raw values as read; fields of leaves above max_ext_leaf are ignored. */
struct sevshim_sev_regs {
    uint32_t max_ext_leaf;   /* CPUID 0x80000000 EAX */
    uint32_t addr_eax;       /* CPUID 0x80000008 EAX */
    uint32_t sev_eax;        /* CPUID 0x8000001F EAX */
    uint32_t sev_ebx;        /* CPUID 0x8000001F EBX: [5:0] C-bit, [11:6] phys-bit reduction */
    uint64_t sev_status;     /* MSR 0xC0010131, only meaningful if sevshim_sev_msr_needed() */
};

struct sevshim_sev_info {
    enum sevshim_sev_mode mode;
    unsigned cbit;           /* 0 if mode is NONE */
    uint64_t cmask;          /* 1 << cbit for SEV with a valid C-bit, else 0 */
};

/* 1 if the CPUID leaf says SEV exists, i.e. SEV_STATUS may be read (elsewhere: #GP). */
int sevshim_sev_msr_needed(uint32_t max_ext_leaf, uint32_t sev_eax);

/* OK: no SEV (cmask 0). E080: plain SEV, usable C-bit (cmask set: the tables can be built,
 * then the shim refuses). E081 SEV-ES, E082 SNP (cmask 0). E083: SEV with an unusable C-bit
 * position or physical-address reduction (cmask 0). */
enum sevshim_error sevshim_sev_decode(const struct sevshim_sev_regs *r, struct sevshim_sev_info *out);

/* ---- identity page tables for 0..4 GiB (2 MiB pages) ---- */
#define SEVSHIM_PT_PAGES    6                   /* PML4, PDPT, PD 0..3 */
#define SEVSHIM_PT_ENTRIES  (SEVSHIM_PT_PAGES * 512)
#define SEVSHIM_PT_ADDR     0x000FFFFFFFFFF000ull  /* address bits 51:12 of an entry */
#define SEVSHIM_PT_P        0x1ull
#define SEVSHIM_PT_RW       0x2ull
#define SEVSHIM_PT_PS       0x80ull

struct sevshim_pt_range { uint64_t base, size; };

/* Ranges mapped with the C-bit clear (shared with the host): the fw_cfg DMA bounce page and
 * the MMIO top of the 4 GiB space (layout.h). */
extern const struct sevshim_pt_range sevshim_shared_ranges[];
extern const unsigned sevshim_shared_count;

/* 1 if cmask is 0 or exactly one bit in 32..51. */
int sevshim_cmask_ok(uint64_t cmask);

/* Fills pt (SEVSHIM_PT_ENTRIES at physical pt_pa) with identity tables for 0..4 GiB: PML4[0] ->
 * PDPT[0..3] -> 4 PDs of 2 MiB pages, present + writable, cmask on every table pointer and on
 * every page outside the shared ranges. 0, or -1 (pt untouched) if cmask is invalid, pt_pa
 * unaligned or the tables not below 4 GiB, or a shared range empty, unaligned or past 4 GiB. */
int sevshim_pt_build(uint64_t *pt, uint64_t pt_pa, uint64_t cmask,
                     const struct sevshim_pt_range *shared, unsigned n_shared);
#endif
