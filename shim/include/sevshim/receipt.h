/* The shim's receipt (docs/formats.md section 9): a MAC under the owner's receipt key over what
 * the shim decided. Encoder, MAC and key extraction are pure, so the host tests run them
 * against the Go package receipt's golden vectors. The one live key is a private static of
 * receipt.c, wiped on every path. */
#ifndef SEVSHIM_RECEIPT_H
#define SEVSHIM_RECEIPT_H
#include <stddef.h>
#include <stdint.h>
#include "sevshim/errors.h"
#include "sevshim/formats.h"

/* The fields of a receipt. A field whose flag (SEVSHIM_RECEIPT_F_*) is clear is encoded as
 * zero bytes whatever this struct holds. */
struct sevshim_receipt {
    uint16_t verdict;                               /* 0 = accepted, else the error code */
    uint16_t flags;
    uint8_t nonce[SEVSHIM_NONCE_SIZE];
    uint64_t bios_version;
    uint8_t manifest_digest[SEVSHIM_SHA384_SIZE];
    uint8_t signer_key_id[SEVSHIM_SHA384_SIZE];
    uint8_t image_digest[SEVSHIM_SHA384_SIZE];
    uint8_t vars_digest[SEVSHIM_SHA384_SIZE];
    uint8_t policy_digest[SEVSHIM_SHA384_SIZE];
};

/* The body: SEVSHIM_RECEIPT_SIZE bytes. */
void sevshim_receipt_encode(const struct sevshim_receipt *r, uint8_t out[SEVSHIM_RECEIPT_SIZE]);

/* HMAC-SHA-384 (BearSSL br_hmac) of msg under key; every context is wiped before return. */
void sevshim_receipt_mac(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                         uint8_t out[SEVSHIM_RECEIPT_MAC_SIZE]);

/* Takes the receipt-key entry out of the EFI secret table in area, in place (docs/formats.md
 * section 9): later entries move down, the total shrinks, the tail is zeroed (a table of just
 * the key: all of it). No table, a malformed one (the hand-off refuses it, E064) or no key:
 * OK, *found = 0, area untouched. One entry of exactly 20 + SEVSHIM_RECEIPT_KEY_SIZE bytes:
 * OK, *found = 1, read straight into key. Another length, or two: E065, area untouched. */
enum sevshim_error sevshim_receipt_key_take(volatile uint8_t *area, size_t area_len,
                                            uint8_t key[SEVSHIM_RECEIPT_KEY_SIZE], int *found);

/* ---- the shim's one receipt (state private to receipt.c) --------------------------------- */

/* Takes the key out of the secret area (sevshim_receipt_key_take) into the private static. */
enum sevshim_error receipt_begin(volatile uint8_t *area, size_t area_len);
int receipt_have_key(void);
/* The fields as the shim learns them; receipt_finish builds the receipt from these. */
void receipt_set_nonce(const uint8_t nonce[SEVSHIM_NONCE_SIZE]);
void receipt_set_manifest(const uint8_t *manifest);   /* the 352 bytes as received */
/* flag: SEVSHIM_RECEIPT_F_IMAGE, _VARS or _POLICY, the field digest goes to (others: ignored) */
void receipt_set_digest(uint16_t flag, const uint8_t digest[SEVSHIM_SHA384_SIZE]);
/* Builds and MACs the receipt with this verdict, then wipes the key. 1 and out = body || MAC
 * if a key was held, else 0. Only the first call builds a receipt. */
int receipt_finish(uint16_t verdict, uint8_t out[SEVSHIM_RECEIPT_SIZE + SEVSHIM_RECEIPT_MAC_SIZE]);
/* Zeroes the key and every field (exception path; receipt_finish calls it too). */
void receipt_wipe(void);
#endif
