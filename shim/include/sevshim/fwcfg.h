/* QEMU fw_cfg: probe, file directory, reads (DMA with PIO fallback). Every byte is untrusted. */
#ifndef SEVSHIM_FWCFG_H
#define SEVSHIM_FWCFG_H
#include <stdint.h>
#include "sevshim/errors.h"

struct fwcfg_file {
    const char *name;   /* in: the file name */
    int present;        /* out: found in the directory */
    uint32_t size;      /* out: size from the directory */
    uint16_t select;    /* out: selector */
};

/* Checks the "QEMU" signature and the DMA feature bit. Returns 1 if fw_cfg answered. */
int fwcfg_probe(void);
/* Guest RAM size in bytes (fw_cfg key 0x0003, u64 LE): host input, used only as a bound. */
uint64_t fwcfg_ram_size(void);
/* Scans the directory once and fills every file (first match wins). */
void fwcfg_lookup(struct fwcfg_file *files, unsigned n);
/* Reads f (len must be f->size) into private buf: DMA in chunks through the shared bounce page
 * SHIM_RAM_BOUNCE, each copied once into buf; the PIO fallback reads into buf directly. */
enum sevshim_error fwcfg_read(const struct fwcfg_file *f, void *buf, uint32_t len);
#endif
