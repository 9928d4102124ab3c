/* The two ways the shim ends: refusal (halt) or hand-off (INIT IPI into the new flash). */
#include <string.h>
#include "sevshim/handoff.h"
#include "sevshim/console.h"
#include "sevshim/io.h"
#include "sevshim/cpu.h"
#include "sevshim/layout.h"
#include "sevshim/receipt.h"
#include "sevshim/secret.h"
#include "sevshim/verify.h"

void secret_wipe(void)
{
    sevshim_wipe((volatile void *)(uintptr_t)SHIM_RAM_SECRET, SHIM_RAM_SECRET_SIZE);
    barrier();
}

extern uint8_t __stack_bottom[], stack_top[];   /* link.ld: the 64 KiB main stack */

/* Zeroes the main stack below the caller's frame, where BearSSL's HMAC left the key XOR its
 * pads and message schedules (rep stosb needs no stack of its own). */
__attribute__((noinline)) static void stack_scrub(void)
{
    uint8_t *p = __stack_bottom;
    __asm__ volatile("mov %%rsp, %%rcx\n\t"
                     "sub %%rdi, %%rcx\n\t"
                     "xor %%eax, %%eax\n\t"
                     "rep stosb"
                     : "+D"(p) :: "rax", "rcx", "memory", "cc");
}

void stack_scrub_all(void)
{
    /* exception path: runs on the IST1 stack, the whole main stack is dead */
    sevshim_wipe(__stack_bottom, (size_t)(stack_top - __stack_bottom));
}

/* The receipt of this decision (docs/formats.md section 9): receipt_finish MACs it and wipes
 * the key, stack_scrub the MAC's dead frames; receipt_print prints it later. */
static uint8_t receipt_blob[SEVSHIM_RECEIPT_SIZE + SEVSHIM_RECEIPT_MAC_SIZE];

static void receipt_print(int have)
{
    con_fmt(have ? SEVSHIM_CON_RECEIPT : SEVSHIM_CON_RECEIPT_NONE, (uintptr_t)receipt_blob,
            sizeof(receipt_blob));
}

void secret_handoff(const struct sevshim_secret_plan *plan)
{
    /* Planned (and any refusal done) before the flash was touched; copied only now, so no
     * refusal can follow it. rep movsb copies area to block: no byte passes the stack. */
    if (plan->action == SEVSHIM_SECRET_COPY) {
        uint8_t *blk = (uint8_t *)(uintptr_t)plan->block_base;
        memcpy(blk, (const void *)(uintptr_t)SHIM_RAM_SECRET, plan->table_len);
        memset(blk + plan->table_len, 0, plan->block_size - plan->table_len);
        barrier();
    }
    secret_wipe();
    switch (plan->action) {
    case SEVSHIM_SECRET_COPY:
        con_fmt(SEVSHIM_CON_SECRET_HANDED_OFF, plan->table_len, plan->block_base);
        break;
    case SEVSHIM_SECRET_WIPE:
        con_line(SEVSHIM_CON_SECRET_WIPED);
        break;
    default:
        con_line(SEVSHIM_CON_SECRET_NONE);
        break;
    }
}

void shim_refuse(enum sevshim_error e)
{
    const char *name = sevshim_error_name(e);
    if (name == NULL) {       /* never print a code that errors.h does not define */
        e = SEVSHIM_E91;
        name = sevshim_error_name(e);
    }
    unsigned code = (unsigned)e;
    char num[4] = { (char)('0' + code / 100 % 10), (char)('0' + code / 10 % 10),
                    (char)('0' + code % 10), 0 };
    secret_wipe();            /* first: nothing below may run with the secret still there */
    int have = receipt_finish((uint16_t)code, receipt_blob);
    stack_scrub();
    con_fmt(SEVSHIM_CON_ERROR, (uintptr_t)num, (uintptr_t)name);
    receipt_print(have);
    con_line(SEVSHIM_CON_HALT);
    cpu_halt_forever();
    __builtin_unreachable();
}

void shim_handoff(const struct sevshim_secret_plan *plan)
{
    /* all checks passed, the flash holds the BIOS: receipt OK, key gone before the copy */
    int have = receipt_finish(0, receipt_blob);
    stack_scrub();
    secret_handoff(plan);
    receipt_print(have);
    con_line(SEVSHIM_CON_HANDOFF);
    lapic_init_self();
}
