/* Host test of the console protocol (docs/shim.md "Console"): every line of
 * testdata/golden/console/lines.txt (written by the Go generator tests/golden from
 * pkg/format/console) is formatted here through the firmware's own src/console.c, with the
 * SEVSHIM_CON_* formats of console.h and the same example arguments, and must come out byte for
 * byte: "line\n" on debugcon and "line\r\n" on COM1. Every line of the file must be checked.
 *
 *   test_console LINES_TXT
 * Last line: "N passed, M failed".
 */
#include <stdio.h>
#include <string.h>
#include "sevshim/console.h"
#include "sevshim/io.h"

struct port_log test_com1, test_debugcon;
static int passed, failed;

static const uint8_t signer[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
static const uint8_t receipt[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* The example of each line, as tests/golden's consoleExamples. */
static int format(const char *name)
{
    if (!strcmp(name, "READY")) con_line(SEVSHIM_CON_READY);
    else if (!strcmp(name, "WAKE")) con_line(SEVSHIM_CON_WAKE);
    else if (!strcmp(name, "LOADED")) con_fmt(SEVSHIM_CON_LOADED, 3653632, 540672);
    else if (!strcmp(name, "VERIFIED"))
        con_fmt(SEVSHIM_CON_VERIFIED, 6, (uintptr_t)signer, 8, (uintptr_t)"say \"SEVSHIM HANDOFF\"");
    else if (!strcmp(name, "TPM extended")) con_fmt(SEVSHIM_CON_TPM_EXTENDED, 9, 2);
    else if (!strcmp(name, "TPM absent")) con_line(SEVSHIM_CON_TPM_ABSENT);
    else if (!strcmp(name, "FLASHED")) con_fmt(SEVSHIM_CON_FLASHED, 55, 8);
    else if (!strcmp(name, "SECRET handed-off")) con_fmt(SEVSHIM_CON_SECRET_HANDED_OFF, 1234, 0x80f000);
    else if (!strcmp(name, "SECRET wiped")) con_line(SEVSHIM_CON_SECRET_WIPED);
    else if (!strcmp(name, "SECRET none")) con_line(SEVSHIM_CON_SECRET_NONE);
    else if (!strcmp(name, "RECEIPT none")) con_line(SEVSHIM_CON_RECEIPT_NONE);
    else if (!strcmp(name, "RECEIPT")) con_fmt(SEVSHIM_CON_RECEIPT, (uintptr_t)receipt, sizeof(receipt));
    else if (!strcmp(name, "HANDOFF")) con_line(SEVSHIM_CON_HANDOFF);
    else if (!strcmp(name, "ERROR")) con_fmt(SEVSHIM_CON_ERROR, (uintptr_t)"034", (uintptr_t)"version-below-floor");
    else if (!strcmp(name, "EXCEPTION")) con_fmt(SEVSHIM_CON_EXCEPTION, 13, 0, 0xfffffff0);
    else if (!strcmp(name, "HALT")) con_line(SEVSHIM_CON_HALT);
    else return 0;
    return 1;
}

static void check(int ok, const char *what, const char *name)
{
    if (ok)
        passed++;
    else {
        failed++;
        printf("FAIL %s: %s\n", name, what);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_console LINES_TXT\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    char row[1024];
    int rows = 0;
    while (fgets(row, sizeof(row), f) != NULL) {
        char *tab = strchr(row, '\t'), *nl = strchr(row, '\n');
        if (tab == NULL || nl == NULL) {
            check(0, "not name<TAB>line<LF>", row);
            continue;
        }
        *tab = 0;
        const char *line = tab + 1;
        size_t n = (size_t)(nl - line);
        rows++;
        test_com1.len = test_debugcon.len = 0;
        if (!format(row)) {
            check(0, "no example in test_console.c for this line", row);
            continue;
        }
        /* debugcon: the line and "\n"; COM1: the line and "\r\n" */
        check(test_debugcon.len == n + 1 && !memcmp(test_debugcon.buf, line, n + 1), "debugcon bytes", row);
        check(test_com1.len == n + 2 && !memcmp(test_com1.buf, line, n) &&
              !memcmp(test_com1.buf + n, "\r\n", 2), "COM1 bytes", row);
        if (test_debugcon.len != n + 1 || memcmp(test_debugcon.buf, line, n + 1))
            printf("  want %.*s\n  got  %.*s", (int)n, line, (int)test_debugcon.len, test_debugcon.buf);
    }
    fclose(f);
    check(rows >= 16, "fewer than 16 golden lines", argv[1]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
