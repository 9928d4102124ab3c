/* sevshim stable error codes.
 *
 * This header is the single C definition. The Go package shimerr carries the same table and a
 * test parses this file to make sure both agree. A code and its name never change meaning once
 * released; new failures get new codes. The console line is exactly:
 *     SEVSHIM ERROR E<code, 3 digits> <name>
 * followed by "SEVSHIM HALT". docs/errors.md explains each one to users.
 */
#ifndef SEVSHIM_ERRORS_H
#define SEVSHIM_ERRORS_H

/* SEVSHIM_ERROR(code, name) */
#define SEVSHIM_ERROR_LIST(X)                  \
    X(1,  "no-fwcfg")                          \
    X(2,  "fwcfg-dma")                         \
    X(10, "policy-invalid")                    \
    X(20, "manifest-missing")                  \
    X(21, "manifest-size")                     \
    X(22, "manifest-malformed")                \
    X(23, "unknown-signer")                    \
    X(24, "bad-signature")                     \
    X(25, "layout-mismatch")                   \
    X(26, "image-size-mismatch")               \
    X(27, "signature-high-s")                  \
    X(30, "bios-missing")                      \
    X(31, "bios-truncated")                    \
    X(32, "bios-oversized")                    \
    X(33, "digest-mismatch")                   \
    X(34, "version-below-floor")               \
    X(35, "digest-denied")                     \
    X(36, "version-denied")                    \
    X(40, "vars-size")                         \
    X(41, "vars-not-allowed")                  \
    X(42, "vars-digest-not-allowed")           \
    X(50, "flash-not-found")                   \
    X(51, "flash-geometry")                    \
    X(52, "flash-erase")                       \
    X(53, "flash-program")                     \
    X(54, "flash-verify")                      \
    X(55, "flash-digest-mismatch")             \
    X(60, "secret-block-missing")              \
    X(61, "bios-footer-invalid")               \
    X(62, "secret-block-unusable")             \
    X(63, "secret-too-large")                  \
    X(64, "secret-malformed")                  \
    X(65, "receipt-key-invalid")               \
    X(66, "nonce-invalid")                     \
    X(70, "tpm-missing")                       \
    X(71, "tpm-interface")                     \
    X(72, "tpm-timeout")                       \
    X(73, "tpm-response")                      \
    X(80, "sev-active")                        \
    X(81, "sev-es-active")                     \
    X(82, "sev-snp-active")                    \
    X(83, "sev-cbit-invalid")                  \
    X(90, "cpu-exception")                     \
    X(91, "internal")

enum sevshim_error {
    SEVSHIM_OK = 0,
#define SEVSHIM_ENUM_ENTRY(code, name) SEVSHIM_E##code = code,
    SEVSHIM_ERROR_LIST(SEVSHIM_ENUM_ENTRY)
#undef SEVSHIM_ENUM_ENTRY
};

#endif
