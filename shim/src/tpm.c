/* CRB TPM interface (TCG PC Client PTP, CRB, locality 0) of QEMU's tpm-crb: registers at
 * TPM_CRB_BASE, one command/response buffer at +0x80, both the host's: every response is
 * copied out under a size bound and parsed strictly (tpm2.c); every poll is bounded. */
#include <string.h>
#include "sevshim/io.h"
#include "sevshim/tpm2.h"

#define R(off)            (TPM_CRB_BASE + (off))
#define LOC_STATE         R(0x00)
#define LOC_CTRL          R(0x08)
#define LOC_STS           R(0x0C)
#define INTF_ID           R(0x30)
#define CTRL_REQ          R(0x40)
#define CTRL_STS          R(0x44)
#define CTRL_START        R(0x4C)
#define CMD_SIZE          R(0x58)
#define CMD_LADDR         R(0x5C)
#define CMD_HADDR         R(0x60)
#define RSP_SIZE          R(0x64)
#define RSP_ADDR_LO       R(0x68)
#define RSP_ADDR_HI       R(0x6C)
#define DATA_OFF          0x80u
#define DATA_MAX          (0x1000u - DATA_OFF)

#define LOC_STATE_ASSIGNED  (1u << 1)
#define LOC_STATE_ACTIVE(v) (((v) >> 2) & 7u)
#define LOC_STATE_VALID     (1u << 7)
#define LOC_CTRL_REQUEST    (1u << 0)
#define LOC_CTRL_RELINQUISH (1u << 1)
#define LOC_STS_GRANTED     (1u << 0)
#define CTRL_REQ_CMD_READY  (1u << 0)
#define CTRL_REQ_GO_IDLE    (1u << 1)
#define CTRL_STS_FATAL      (1u << 0)
#define CTRL_STS_IDLE       (1u << 1)
#define START_INVOKE        (1u << 0)
#define POLL_MAX            100000000u   /* MMIO reads: tens of seconds under TCG */

static uint8_t rsp_buf[DATA_MAX];

int tpm_present(void)
{
    uint32_t id = mmio_read32(INTF_ID);
    uint32_t st = mmio_read32(LOC_STATE);
    return (id & 0xF) == 1 && ((id >> 4) & 0xF) == 1 && (st & LOC_STATE_VALID) && st != 0xFFFFFFFFu;
}

/* Poll until (reg & mask) == want. 1 on success, 0 on timeout. */
static int poll32(uintptr_t reg, uint32_t mask, uint32_t want)
{
    for (uint32_t i = 0; i < POLL_MAX; i++)
        if ((mmio_read32(reg) & mask) == want)
            return 1;
    return 0;
}

static enum sevshim_error crb_open(void)
{
    mmio_write32(LOC_CTRL, LOC_CTRL_REQUEST);
    if (!poll32(LOC_STS, LOC_STS_GRANTED, LOC_STS_GRANTED))
        return SEVSHIM_E71;
    uint32_t st = mmio_read32(LOC_STATE);
    if (!(st & LOC_STATE_ASSIGNED) || LOC_STATE_ACTIVE(st) != 0)
        return SEVSHIM_E71;
    /* the only buffer layout the shim knows: command and response both at +0x80 */
    if (mmio_read32(CMD_LADDR) != R(DATA_OFF) || mmio_read32(CMD_HADDR) != 0 ||
        mmio_read32(RSP_ADDR_LO) != R(DATA_OFF) || mmio_read32(RSP_ADDR_HI) != 0 ||
        mmio_read32(CMD_SIZE) < TPM2_PCR_EVENT_CMD_SIZE || mmio_read32(CMD_SIZE) > DATA_MAX ||
        mmio_read32(RSP_SIZE) < TPM2_HEADER_SIZE || mmio_read32(RSP_SIZE) > DATA_MAX)
        return SEVSHIM_E71;
    return SEVSHIM_OK;
}

/* One command; the response (bounded by RSP_SIZE) lands in rsp_buf, *rlen = its size. */
static enum sevshim_error crb_transact(const uint8_t *cmd, uint32_t len, uint32_t *rlen)
{
    volatile uint8_t *buf = (volatile uint8_t *)(uintptr_t)R(DATA_OFF);
    *rlen = 0;
    if (mmio_read32(CTRL_STS) & CTRL_STS_FATAL)
        return SEVSHIM_E71;
    mmio_write32(CTRL_REQ, CTRL_REQ_CMD_READY);
    if (!poll32(CTRL_REQ, CTRL_REQ_CMD_READY, 0) || !poll32(CTRL_STS, CTRL_STS_IDLE, 0))
        return SEVSHIM_E72;
    if (mmio_read32(CTRL_START) & START_INVOKE)
        return SEVSHIM_E71;                     /* someone else's command is running */
    for (uint32_t i = 0; i < len; i++)
        buf[i] = cmd[i];
    barrier();
    mmio_write32(CTRL_START, START_INVOKE);
    if (!poll32(CTRL_START, START_INVOKE, 0))
        return SEVSHIM_E72;
    if (mmio_read32(CTRL_STS) & CTRL_STS_FATAL)
        return SEVSHIM_E71;
    for (uint32_t i = 0; i < TPM2_HEADER_SIZE; i++)      /* the header, then all n bytes */
        rsp_buf[i] = buf[i];
    uint32_t n = tpm2_rsp_size(rsp_buf, TPM2_HEADER_SIZE);
    uint32_t cap = mmio_read32(RSP_SIZE);
    if (n < TPM2_HEADER_SIZE || n > cap || n > sizeof(rsp_buf))
        return SEVSHIM_E73;
    for (uint32_t i = 0; i < n; i++)
        rsp_buf[i] = buf[i];
    *rlen = n;
    return SEVSHIM_OK;
}

enum sevshim_error tpm_measure(const struct sevshim_result *r, uint8_t pcr, unsigned *banks)
{
    static uint8_t cmd[TPM2_PCR_EVENT_CMD_SIZE];
    uint8_t event[SEVSHIM_TPM_EVENT_SIZE], ev384[SEVSHIM_SHA384_SIZE];
    uint32_t n;
    enum sevshim_error e;

    *banks = 0;
    e = crb_open();
    if (e == SEVSHIM_OK) {
        tpm2_startup_cmd(cmd);
        e = crb_transact(cmd, TPM2_STARTUP_CMD_SIZE, &n);
        if (e == SEVSHIM_OK)
            e = tpm2_startup_rsp(rsp_buf, n);
    }
    if (e == SEVSHIM_OK) {
        sevshim_tpm_event(r, event);
        sevshim_sha384(event, sizeof(event), ev384);
        tpm2_pcr_event_cmd(cmd, pcr, event);
        e = crb_transact(cmd, TPM2_PCR_EVENT_CMD_SIZE, &n);
        if (e == SEVSHIM_OK)
            e = tpm2_pcr_event_rsp(rsp_buf, n, ev384, banks);
    }
    mmio_write32(CTRL_REQ, CTRL_REQ_GO_IDLE);       /* on every path: idle, locality released */
    mmio_write32(LOC_CTRL, LOC_CTRL_RELINQUISH);
    return e;
}
