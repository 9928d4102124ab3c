/* sevshim formats (policy block version 2, the rest version 1): the only C declaration of what docs/formats.md specifies.
 *
 * Offsets, not packed structs: the parser reads every field with explicit little-endian loads
 * at these offsets after checking the length, so no host byte is ever used through a pointer
 * cast. The Go packages under pkg/format define the same formats; both sides are
 * tested against testdata/golden/.
 */
#ifndef SEVSHIM_FORMATS_H
#define SEVSHIM_FORMATS_H

/* ---- 1. BIOS layouts (sevshim/layouts.def): SEVSHIM_LAYOUT_<SYM>, SEVSHIM_<SYM>_CODE_SIZE, _VARS_SIZE */
#define SEVSHIM_FLASH_TOP               0x100000000ull
#define SEVSHIM_LAYOUT_ROW(id, sym, name, code, vars, code_file, vars_file) \
    SEVSHIM_LAYOUT_##sym = id, SEVSHIM_##sym##_CODE_SIZE = code, SEVSHIM_##sym##_VARS_SIZE = vars,
enum {
#include "sevshim/layouts.def"
};
#undef SEVSHIM_LAYOUT_ROW
#define SEVSHIM_PICK_(a, b, c) a##b##c      /* SEVSHIM_PICK(SEVSHIM_, OVMF_2M, _CODE_SIZE) */
#define SEVSHIM_PICK(a, b, c)  SEVSHIM_PICK_(a, b, c)

/* ---- 2. Policy block ---------------------------------------------------------------------- */
#define SEVSHIM_POLICY_MAGIC            "SEVSHPOL"      /* 8 bytes, no NUL */
#define SEVSHIM_POLICY_VERSION          2u     /* 2: var-store mode and allow-list */
#define SEVSHIM_POLICY_REGION_SIZE      0x4000u
#define SEVSHIM_POLICY_HEADER_SIZE      64u
#define SEVSHIM_POLICY_OFF_MAGIC        0x00u
#define SEVSHIM_POLICY_OFF_VERSION      0x08u  /* u16 */
#define SEVSHIM_POLICY_OFF_HDR_SIZE     0x0Au  /* u16 */
#define SEVSHIM_POLICY_OFF_TOTAL_SIZE   0x0Cu  /* u32 */
#define SEVSHIM_POLICY_OFF_LAYOUT       0x10u  /* u32 */
#define SEVSHIM_POLICY_OFF_SECRET_MODE  0x14u  /* u8  */
#define SEVSHIM_POLICY_OFF_TPM_MODE     0x15u  /* u8  */
#define SEVSHIM_POLICY_OFF_TPM_PCR      0x16u  /* u8  */
#define SEVSHIM_POLICY_OFF_RESERVED0    0x17u  /* u8, zero */
#define SEVSHIM_POLICY_OFF_NSIGNERS     0x18u  /* u16 */
#define SEVSHIM_POLICY_OFF_NDIGESTS     0x1Au  /* u16 */
#define SEVSHIM_POLICY_OFF_NVERSIONS    0x1Cu  /* u16 */
#define SEVSHIM_POLICY_OFF_VARS_MODE    0x1Eu  /* u8  */
#define SEVSHIM_POLICY_OFF_RESERVED2    0x1Fu  /* u8, zero */
#define SEVSHIM_POLICY_OFF_NALLOWED_VARS 0x20u /* u16 */
#define SEVSHIM_POLICY_OFF_RESERVED1    0x22u  /* 30 bytes, zero */
#define SEVSHIM_POLICY_RESERVED1_LEN    30u

#define SEVSHIM_SECRET_OPTIONAL         0u
#define SEVSHIM_SECRET_REQUIRE          1u
#define SEVSHIM_TPM_OFF                 0u
#define SEVSHIM_TPM_IF_PRESENT          1u
#define SEVSHIM_TPM_REQUIRED            2u
#define SEVSHIM_TPM_MAX_PCR             23u
#define SEVSHIM_VARS_NONE               0u     /* a vars file is refused (E041) */
#define SEVSHIM_VARS_ALLOW              1u     /* only listed SHA-384 digests (else E042) */
#define SEVSHIM_VARS_ANY                2u     /* any var store of the right size */

#define SEVSHIM_MAX_SIGNERS             16u
#define SEVSHIM_MAX_DENIED_DIGESTS      64u
#define SEVSHIM_MAX_DENIED_VERSIONS     64u
#define SEVSHIM_MAX_ALLOWED_VARS        16u

#define SEVSHIM_SIGNER_SIZE             160u
#define SEVSHIM_SIGNER_OFF_KEY_ID       0u     /* 48 bytes */
#define SEVSHIM_SIGNER_OFF_PUBKEY       48u    /* 97 bytes, 0x04 || X || Y */
#define SEVSHIM_SIGNER_OFF_RESERVED     145u   /* 7 bytes, zero */
#define SEVSHIM_SIGNER_OFF_MIN_VERSION  152u   /* u64 */
#define SEVSHIM_P384_PUBKEY_SIZE        97u
#define SEVSHIM_SHA384_SIZE             48u
#define SEVSHIM_DENIED_DIGEST_SIZE      48u
#define SEVSHIM_DENIED_VERSION_SIZE     8u
#define SEVSHIM_ALLOWED_VARS_SIZE       48u

/* ---- 3. Manifest -------------------------------------------------------------------------- */
#define SEVSHIM_MANIFEST_MAGIC          "SEVSHMAN"
#define SEVSHIM_MANIFEST_VERSION        1u
#define SEVSHIM_MANIFEST_SIZE           0x160u /* 352 */
#define SEVSHIM_MANIFEST_SIGNED_SIZE    0x100u /* 256 */
#define SEVSHIM_MANIFEST_OFF_MAGIC      0x000u
#define SEVSHIM_MANIFEST_OFF_VERSION    0x008u /* u16 */
#define SEVSHIM_MANIFEST_OFF_SIGNED_SZ  0x00Au /* u16 */
#define SEVSHIM_MANIFEST_OFF_LAYOUT     0x00Cu /* u32 */
#define SEVSHIM_MANIFEST_OFF_IMAGE_SIZE 0x010u /* u64 */
#define SEVSHIM_MANIFEST_OFF_BIOS_VER   0x018u /* u64 */
#define SEVSHIM_MANIFEST_OFF_DIGEST     0x020u /* 48 */
#define SEVSHIM_MANIFEST_OFF_KEY_ID     0x050u /* 48 */
#define SEVSHIM_MANIFEST_OFF_VERSTR     0x080u /* 64 */
#define SEVSHIM_MANIFEST_VERSTR_LEN     64u
#define SEVSHIM_MANIFEST_OFF_RESERVED   0x0C0u /* 64, zero */
#define SEVSHIM_MANIFEST_RESERVED_LEN   64u
#define SEVSHIM_MANIFEST_OFF_SIGNATURE  0x100u /* 96: r || s, big-endian */
#define SEVSHIM_P384_SIG_SIZE           96u

/* ---- 4. Footer table ---------------------------------------------------------------------- */
/* GUIDs in EFI byte order (as stored in the image). */
#define SEVSHIM_GUID_FOOTER_TABLE  {0xde,0x82,0xb5,0x96,0xb2,0x1f,0xf7,0x45,0xba,0xea,0xa3,0x66,0xc5,0x5a,0x08,0x2d}
#define SEVSHIM_GUID_SEV_ES_RESET  {0xde,0x71,0xf7,0x00,0x7e,0x1a,0xcb,0x4f,0x89,0x0e,0x68,0xc7,0x7e,0x2f,0xb4,0x4e}
#define SEVSHIM_GUID_SEV_SECRET    {0x61,0xb3,0x2e,0x4c,0x9b,0x7d,0xc3,0x4c,0x80,0x81,0x12,0x7c,0x90,0xd3,0xd2,0x94}
#define SEVSHIM_GUID_POLICY        {0x2c,0x47,0xc6,0x0a,0xf2,0xd1,0xe6,0x4a,0x8d,0xa8,0xf0,0x0f,0x54,0x64,0x8a,0x10}
#define SEVSHIM_GUID_INFO          {0x41,0xa4,0x8b,0x13,0xdc,0x15,0xec,0x4a,0xaa,0xad,0x03,0x97,0xd4,0xfd,0xd5,0x49}
#define SEVSHIM_FOOTER_GUID_OFF_FROM_END    0x30u
#define SEVSHIM_FOOTER_LEN_OFF_FROM_END     0x32u
#define SEVSHIM_INFO_FORMAT_VERSION         1u

/* Data of the SEV secret block entry: u32 base (GPA), u32 size. Both 0: no block. */
#define SEVSHIM_SECRET_ENTRY_DATA_SIZE      8u

/* ---- 4a. EFI secret table (what LAUNCH_SECRET places in the shim's secret area; the shim
 * copies it into the accepted BIOS's secret block). Header GUID 1e74f542-71dd-4d66-963e-
 * ef4287ff173b, u32 total length (header included); entries: GUID, u32 length (>= 20,
 * header included), data. */
#define SEVSHIM_GUID_EFI_SECRET_TABLE {0x42,0xf5,0x74,0x1e,0xdd,0x71,0x66,0x4d,0x96,0x3e,0xef,0x42,0x87,0xff,0x17,0x3b}
#define SEVSHIM_EFI_SECRET_HEADER_SIZE      20u
#define SEVSHIM_EFI_SECRET_ENTRY_HDR_SIZE   20u

/* ---- 5. fw_cfg names ---------------------------------------------------------------------- */
#define SEVSHIM_FWCFG_MANIFEST          "opt/org.sevshim/manifest"
#define SEVSHIM_FWCFG_BIOS              "opt/org.sevshim/bios"
#define SEVSHIM_FWCFG_VARS              "opt/org.sevshim/vars"
#define SEVSHIM_FWCFG_NONCE             "opt/org.sevshim/nonce"  /* section 9: the owner's nonce */

/* ---- 7. Measured-boot event (TPM2_PCR_Event data) --------------------------------------- */
#define SEVSHIM_TPM_EVENT_MAGIC         "SEVSHEV2"     /* 2: var-store flag and digest */
#define SEVSHIM_TPM_EVENT_SIZE          216u
#define SEVSHIM_TPM_EVENT_OFF_LAYOUT    0x08u  /* u32 */
#define SEVSHIM_TPM_EVENT_OFF_FLAGS     0x0Cu  /* u32: bit 0 = a var store is programmed; others 0 */
#define SEVSHIM_TPM_EVENT_FLAG_VARS     0x1u
#define SEVSHIM_TPM_EVENT_OFF_VERSION   0x10u  /* u64 */
#define SEVSHIM_TPM_EVENT_OFF_KEY_ID    0x18u  /* 48 */
#define SEVSHIM_TPM_EVENT_OFF_DIGEST    0x48u  /* 48 */
#define SEVSHIM_TPM_EVENT_OFF_POLICY    0x78u  /* 48 */
#define SEVSHIM_TPM_EVENT_OFF_VARS      0xA8u  /* 48: SHA-384 of the var store; zero without one */

/* ---- 9. Receipt (docs/formats.md section 9) ------------------------------------------- */
/* The owner's receipt key: an entry of the EFI secret table (4a) with this GUID,
 * faea669a-ae1b-4c39-9b87-e5ae69994482, and exactly SEVSHIM_RECEIPT_KEY_SIZE data bytes. */
#define SEVSHIM_GUID_RECEIPT_KEY {0x9a,0x66,0xea,0xfa,0x1b,0xae,0x39,0x4c,0x9b,0x87,0xe5,0xae,0x69,0x99,0x44,0x82}
#define SEVSHIM_RECEIPT_KEY_SIZE        48u
#define SEVSHIM_NONCE_SIZE              32u    /* opt/org.sevshim/nonce: exactly this or absent */
#define SEVSHIM_RECEIPT_MAGIC           "SEVSHRCT"
#define SEVSHIM_RECEIPT_VERSION         1u
#define SEVSHIM_RECEIPT_SIZE            0x128u /* 296: the MACed body */
#define SEVSHIM_RECEIPT_MAC_SIZE        48u    /* HMAC-SHA-384 over the body */
#define SEVSHIM_RECEIPT_OFF_MAGIC       0x000u /* 8 */
#define SEVSHIM_RECEIPT_OFF_VERSION     0x008u /* u16: SEVSHIM_RECEIPT_VERSION */
#define SEVSHIM_RECEIPT_OFF_SHIM_FORMAT 0x00Au /* u16: SEVSHIM_INFO_FORMAT_VERSION */
#define SEVSHIM_RECEIPT_OFF_VERDICT     0x00Cu /* u16: 0 = accepted, else the error code */
#define SEVSHIM_RECEIPT_OFF_FLAGS       0x00Eu /* u16: SEVSHIM_RECEIPT_F_* */
#define SEVSHIM_RECEIPT_OFF_NONCE       0x010u /* 32 */
#define SEVSHIM_RECEIPT_OFF_BIOS_VER    0x030u /* u64, from the manifest */
#define SEVSHIM_RECEIPT_OFF_MANIFEST    0x038u /* 48: SHA-384 of the 352 manifest bytes */
#define SEVSHIM_RECEIPT_OFF_KEY_ID      0x068u /* 48: the manifest's signer key id */
#define SEVSHIM_RECEIPT_OFF_IMAGE       0x098u /* 48: SHA-384 of the BIOS image the shim loaded */
#define SEVSHIM_RECEIPT_OFF_VARS        0x0C8u /* 48: SHA-384 of the var store */
#define SEVSHIM_RECEIPT_OFF_POLICY      0x0F8u /* 48: the policy digest (section 2) */
#define SEVSHIM_RECEIPT_F_NONCE         0x01u  /* nonce holds the owner's nonce */
#define SEVSHIM_RECEIPT_F_MANIFEST      0x02u  /* bios_version, manifest and key id are set */
#define SEVSHIM_RECEIPT_F_IMAGE         0x04u  /* image digest is set */
#define SEVSHIM_RECEIPT_F_VARS          0x08u  /* vars digest is set */
#define SEVSHIM_RECEIPT_F_POLICY        0x10u  /* policy digest is set */
#define SEVSHIM_RECEIPT_F_ALL           0x1Fu

#endif
