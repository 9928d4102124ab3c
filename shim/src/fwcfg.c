/* QEMU fw_cfg (x86 I/O ports): signature, features, file directory, DMA and PIO reads. Probed
 * on every wake-up (another QEMU may have resumed the shim); the directory is untrusted. */
#include <string.h>
#include "sevshim/bytes.h"
#include "sevshim/fwcfg.h"
#include "sevshim/io.h"
#include "sevshim/layout.h"

#define FW_CFG_PORT_SEL   0x510
#define FW_CFG_PORT_DATA  0x511
#define FW_CFG_PORT_DMA_HI 0x514
#define FW_CFG_PORT_DMA_LO 0x518
#define FW_CFG_SIGNATURE  0x0000
#define FW_CFG_ID         0x0001
#define FW_CFG_RAM_SIZE   0x0003
#define FW_CFG_FILE_DIR   0x0019
#define FW_CFG_DMA_ERROR  0x01u
#define FW_CFG_DMA_READ   0x02u
#define FW_CFG_DMA_SELECT 0x08u
#define FW_CFG_DIR_MAX    4096u    /* QEMU has far fewer; bounds a hostile count */
#define FW_CFG_NAME_LEN   56u

static int have_dma;

static void pio_select(uint16_t sel) { outw(FW_CFG_PORT_SEL, sel); }

static void pio_read(void *buf, uint32_t len)
{
    void *p = buf;
    uint64_t n = len;
    __asm__ volatile("rep insb" : "+D"(p), "+c"(n) : "d"((uint16_t)FW_CFG_PORT_DATA) : "memory");
}

int fwcfg_probe(void)
{
    uint8_t sig[4], id[4];
    have_dma = 0;
    pio_select(FW_CFG_SIGNATURE);
    pio_read(sig, 4);
    if (memcmp(sig, "QEMU", 4) != 0)
        return 0;
    pio_select(FW_CFG_ID);
    pio_read(id, 4);
    have_dma = (id[0] & 0x02) != 0;
    return 1;
}

uint64_t fwcfg_ram_size(void)
{
    uint8_t b[8];
    pio_select(FW_CFG_RAM_SIZE);
    pio_read(b, sizeof(b));
    return le64(b);
}

void fwcfg_lookup(struct fwcfg_file *files, unsigned n)
{
    uint8_t cnt[4], ent[64];
    for (unsigned k = 0; k < n; k++)
        files[k] = (struct fwcfg_file){ .name = files[k].name };   /* outputs cleared */
    pio_select(FW_CFG_FILE_DIR);
    pio_read(cnt, 4);
    uint32_t count = be32(cnt);
    if (count > FW_CFG_DIR_MAX)
        count = FW_CFG_DIR_MAX;
    for (uint32_t i = 0; i < count; i++) {
        pio_read(ent, sizeof(ent));
        const uint8_t *name = ent + 8;
        for (unsigned k = 0; k < n; k++) {
            size_t l = strlen(files[k].name);
            if (files[k].present || l >= FW_CFG_NAME_LEN)
                continue;
            /* exact match including the terminating NUL, inside the 56-byte field */
            if (memcmp(name, files[k].name, l) == 0 && name[l] == 0) {
                files[k].present = 1;
                files[k].size = be32(ent);
                files[k].select = be16(ent + 4);
            }
        }
    }
}

/* FWCfgDmaAccess (QEMU docs/specs/fw_cfg.rst, "DMA interface"): big-endian control, length,
 * address. Under SEV the device only reaches shared memory: descriptor and data live in the
 * bounce page SHIM_RAM_BOUNCE (docs/shim.md, RAM map), which the host may rewrite any time, so
 * the control word is read once per poll and each chunk copied once, never read again. */
#define DMA_DESC     ((volatile uint32_t *)(uintptr_t)SHIM_RAM_BOUNCE)
#define DMA_DATA     ((const volatile uint8_t *)(uintptr_t)(SHIM_RAM_BOUNCE + 0x1000u))
#define DMA_CHUNK    (SHIM_RAM_BOUNCE_SIZE - 0x1000u)
#define DMA_POLL_MAX 100000000u

/* One transfer of len bytes into the bounce data area; first selects the item (offset 0), later
 * ones continue at its current offset. */
static enum sevshim_error dma_chunk(uint16_t sel, int first, uint32_t len)
{
    uint64_t addr = (uint64_t)(uintptr_t)DMA_DATA;
    uint64_t daddr = (uint64_t)(uintptr_t)DMA_DESC;
    uint32_t ctl = FW_CFG_DMA_READ;
    if (first)
        ctl |= ((uint32_t)sel << 16) | FW_CFG_DMA_SELECT;

    DMA_DESC[0] = __builtin_bswap32(ctl);
    DMA_DESC[1] = __builtin_bswap32(len);
    DMA_DESC[2] = __builtin_bswap32((uint32_t)(addr >> 32));   /* u64 big-endian: high word first */
    DMA_DESC[3] = __builtin_bswap32((uint32_t)addr);
    barrier();
    outl(FW_CFG_PORT_DMA_HI, __builtin_bswap32((uint32_t)(daddr >> 32)));
    outl(FW_CFG_PORT_DMA_LO, __builtin_bswap32((uint32_t)daddr));   /* starts the transfer */
    /* QEMU completes synchronously; the bound only guards against a broken host */
    for (uint32_t i = 0; i < DMA_POLL_MAX; i++) {
        uint32_t c = __builtin_bswap32(DMA_DESC[0]);   /* one read: the host may change it */
        if (c & FW_CFG_DMA_ERROR)
            return SEVSHIM_E2;
        if (c == 0) {
            barrier();
            return SEVSHIM_OK;
        }
    }
    return SEVSHIM_E2;
}

static enum sevshim_error dma_read(uint16_t sel, uint8_t *dst, uint32_t len)
{
    for (uint32_t off = 0; off < len;) {
        uint32_t n = len - off < DMA_CHUNK ? len - off : DMA_CHUNK;
        enum sevshim_error e = dma_chunk(sel, off == 0, n);
        if (e != SEVSHIM_OK)
            return e;
        /* the only read of these bounce bytes */
        memcpy(dst + off, (const void *)(uintptr_t)DMA_DATA, n);
        off += n;
    }
    barrier();
    return SEVSHIM_OK;
}

enum sevshim_error fwcfg_read(const struct fwcfg_file *f, void *buf, uint32_t len)
{
    if (!f->present || len != f->size)
        return SEVSHIM_E91;
    if (len == 0)
        return SEVSHIM_OK;
    if (have_dma)
        return dma_read(f->select, buf, len);
    /* PIO moves bytes through the CPU: straight into private memory */
    pio_select(f->select);
    pio_read(buf, len);
    return SEVSHIM_OK;
}
