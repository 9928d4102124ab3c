/* sevshim main flow: READY -> wait for NMI -> fetch -> verify -> flash -> hand off.
 * Any refusal happens before the first flash command; the shim never jumps after one. */
#include <string.h>
#include "sevshim/console.h"
#include "sevshim/cpu.h"
#include "sevshim/fwcfg.h"
#include "sevshim/handoff.h"
#include "sevshim/layout.h"
#include "sevshim/pflash.h"
#include "sevshim/receipt.h"
#include "sevshim/secret.h"
#include "sevshim/tpm2.h"
#include "sevshim/verify.h"

/* RAM copy of the policy region, made before READY (the flash is reprogrammed later) */
static uint8_t policy_copy[SHIM_POLICY_SIZE] __attribute__((aligned(16)));
static uint8_t manifest_buf[SEVSHIM_MANIFEST_SIZE] __attribute__((aligned(16)));
static uint8_t nonce_buf[SEVSHIM_NONCE_SIZE] __attribute__((aligned(16)));
static struct sevshim_result result;
static struct sevshim_secret_plan secret_plan;

/* RAM the BIOS's secret block must not overlap (sevshim/layout.h); it must also lie below
 * the guest's RAM size and LOW_RAM_MAX (q35 keeps at most 2 GiB of RAM below 4 GiB) */
static const struct sevshim_range shim_ram[] = SHIM_RAM_RANGES;
#define LOW_RAM_MAX 0x80000000ull

#define BIOS_BUF ((uint8_t *)(uintptr_t)SHIM_RAM_BIOS_BUF)
#define VARS_BUF ((uint8_t *)(uintptr_t)SHIM_RAM_VARS_BUF)

static void must(enum sevshim_error e)
{
    if (e != SEVSHIM_OK)
        shim_refuse(e);
}

/* Reads f into buf only if its directory size is exactly size (other sizes are refused by the
 * checks that follow without a byte being read); buf, or NULL if not read. */
static uint8_t *load(const struct fwcfg_file *f, uint8_t *buf, uint32_t size)
{
    if (!f->present || f->size != size)
        return NULL;
    must(fwcfg_read(f, buf, size));
    return buf;
}

/* For the receipt: the policy digest once the policy parsed, the BIOS and var-store SHA-384
 * once hashed (verify zeroes the result first; an all-zero SHA-384 does not occur). */
static void receipt_note_result(void)
{
    static const uint8_t zero[SEVSHIM_SHA384_SIZE];
    if (result.layout != NULL)
        receipt_set_digest(SEVSHIM_RECEIPT_F_POLICY, result.policy_digest);
    if (memcmp(result.image_digest, zero, sizeof(zero)) != 0)
        receipt_set_digest(SEVSHIM_RECEIPT_F_IMAGE, result.image_digest);
    if (memcmp(result.vars_digest, zero, sizeof(zero)) != 0)
        receipt_set_digest(SEVSHIM_RECEIPT_F_VARS, result.vars_digest);
}

void shim_main(void)
{
    console_init();
    cpu_init();
    sev_mem_init();            /* E080..E083: before the policy, fw_cfg and the flash */
    memcpy(policy_copy, (const void *)(uintptr_t)SHIM_POLICY_GPA, sizeof(policy_copy));
    lapic_arm_nmi();
    con_line(SEVSHIM_CON_READY);

    lapic_wait_nmi();
    con_line(SEVSHIM_CON_WAKE);
    /* 0. the owner's receipt key leaves the secret area before anything else reads it
     * (docs/formats.md section 9): from here on it lives only in receipt.c's private static */
    must(receipt_begin((volatile uint8_t *)(uintptr_t)SHIM_RAM_SECRET, SHIM_RAM_SECRET_SIZE));

    /* 1. fw_cfg, re-probed: this may be another QEMU than the one that booted the shim */
    if (!fwcfg_probe())
        shim_refuse(SEVSHIM_E1);
    struct fwcfg_file f[4] = {
        { .name = SEVSHIM_FWCFG_MANIFEST },
        { .name = SEVSHIM_FWCFG_BIOS },
        { .name = SEVSHIM_FWCFG_VARS },
        { .name = SEVSHIM_FWCFG_NONCE },
    };
    fwcfg_lookup(f, 4);
    /* the owner's nonce: exactly 32 bytes or absent (E066), read before anything else */
    if (f[3].present) {
        if (!load(&f[3], nonce_buf, SEVSHIM_NONCE_SIZE))
            shim_refuse(SEVSHIM_E66);
        receipt_set_nonce(nonce_buf);
    }

    struct sevshim_input in = {
        .policy_region = policy_copy,
        .policy_region_len = sizeof(policy_copy),
        .manifest_present = f[0].present, .manifest_size = f[0].size,
        .bios_present = f[1].present, .bios_size = f[1].size,
        .vars_present = f[2].present, .vars_size = f[2].size,
    };
    in.manifest = load(&f[0], manifest_buf, SEVSHIM_MANIFEST_SIZE);
    if (in.manifest != NULL)
        receipt_set_manifest(manifest_buf);
    in.bios = load(&f[1], BIOS_BUF, SHIM_IMAGE_SIZE);
    in.vars = load(&f[2], VARS_BUF, SHIM_VARS_SIZE);
    con_fmt(SEVSHIM_CON_LOADED, in.bios ? f[1].size : 0, in.vars ? f[2].size : 0);

    /* 2..9. policy, manifest, signature, sizes, digest, floor, deny lists, vars */
    enum sevshim_error ve = sevshim_verify(&in, &result);
    receipt_note_result();
    must(ve);
    /* the image this shim is built for: a policy for another layout cannot be flashed here */
    if (result.layout->id != SHIM_LAYOUT_ID)
        shim_refuse(SEVSHIM_E25);
    con_fmt(SEVSHIM_CON_VERIFIED, result.bios_version, (uintptr_t)result.key_id, 8,
            (uintptr_t)result.version_string);

    /* 10. secret hand-off plan from the BIOS's footer table: E060..E064 before the flash */
    uint64_t ram_top = fwcfg_ram_size();
    if (ram_top > LOW_RAM_MAX)
        ram_top = LOW_RAM_MAX;
    must(sevshim_secret_plan(BIOS_BUF, SHIM_IMAGE_SIZE, result.secret_mode,
                             (const volatile uint8_t *)(uintptr_t)SHIM_RAM_SECRET,
                             SHIM_RAM_SECRET_SIZE, ram_top, shim_ram,
                             sizeof(shim_ram) / sizeof(shim_ram[0]), &secret_plan));

    /* 11. measured boot: TPM2_PCR_Event before the flash is touched (E070..E073) */
    if (result.tpm_mode != SEVSHIM_TPM_OFF) {
        if (tpm_present()) {
            unsigned banks;
            must(tpm_measure(&result, result.tpm_pcr, &banks));
            con_fmt(SEVSHIM_CON_TPM_EXTENDED, result.tpm_pcr, banks);
        } else if (result.tpm_mode == SEVSHIM_TPM_REQUIRED) {
            shim_refuse(SEVSHIM_E70);
        } else {
            con_line(SEVSHIM_CON_TPM_ABSENT);
        }
    }

    /* 12. flash: probe both devices before the first erase */
    const struct sevshim_layout *l = result.layout;
    must(pflash_probe(l->code_base, l->code_size));
    if (result.vars_present)             /* verified (and allowed) in step 9 */
        must(pflash_probe(l->vars_base, l->vars_size));
    /* the flash must end up holding what was verified: the signed digest of the private
     * manifest copy, the var-store digest of step 9 (docs/shim.md, "Verify once") */
    uint32_t code_blocks = 0, vars_blocks = 0;
    must(pflash_write(l->code_base, BIOS_BUF, l->code_size, manifest_buf + SEVSHIM_MANIFEST_OFF_DIGEST,
                      &code_blocks));
    if (result.vars_present)
        must(pflash_write(l->vars_base, VARS_BUF, l->vars_size, result.vars_digest, &vars_blocks));
    con_fmt(SEVSHIM_CON_FLASHED, code_blocks, vars_blocks);

    /* 13. secret, then the CPU-only INIT into the new flash */
    shim_handoff(&secret_plan);
}
