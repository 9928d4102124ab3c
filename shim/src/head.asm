; sevshim payload entry (64-bit, runs from RAM at its 1 MiB link address) and CPU vectors.
; Stage 1 (image.asm) jumps here with a GDT in flash; first load one in RAM (in CFI command
; mode the flash reads back status bytes), then stack, zeroed bss, SSE, FS base, shim_main().

        bits    64
        default rel

        extern  shim_main
        extern  exception_report
        extern  nmi_seen
        extern  __bss_start
        extern  __bss_end
        extern  stack_top
        extern  secret_wipe

        global  _start
        global  gdt
        global  isr_table
        global  sev_terminate

        section .text.entry
_start:
        cli
        cld
        lgdt    [gdt_desc]
        mov     ax, 0x10
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        xor     eax, eax
        mov     fs, ax                  ; FS base is set by cpu_init() through the MSR
        mov     gs, ax
        lea     rsp, [stack_top]
        push    0x08
        lea     rax, [.reloaded]
        push    rax
        retfq
.reloaded:
        ; zero .bss (this includes the stacks; nothing is live on the stack here)
        lea     rdi, [__bss_start]
        lea     rcx, [__bss_end]
        sub     rcx, rdi
        xor     eax, eax
        rep     stosb
        lea     rsp, [stack_top]

        ; SSE for BearSSL: CR0.EM=0, CR0.MP=1; CR4.OSFXSR | CR4.OSXMMEXCPT
        mov     rax, cr0
        and     rax, ~(1 << 2)
        or      rax, (1 << 1)
        mov     cr0, rax
        mov     rax, cr4
        or      rax, (1 << 9) | (1 << 10)
        mov     cr4, rax

        call    shim_main               ; rsp is 16-byte aligned here
        jmp     halt_forever

; ---- vectors 0..31: every exception reports E090 and halts; vector 2 (NMI) is the wake-up ----
; Entries run on IST stacks (see cpu.c), so BearSSL's red zone on the main stack survives.
        section .text
exc_common:
        mov     rdi, [rsp]              ; vector
        mov     rsi, [rsp + 8]          ; error code
        mov     rdx, [rsp + 16]         ; rip
        and     rsp, -16
        call    exception_report        ; does not return
halt_forever:                           ; every dead end of this file
        cli
        hlt
        jmp     halt_forever

; #VC (vector 29) exists only under SEV-ES/SNP, where port I/O would raise #VC again: no
; output; wipe the secret page and request termination (reason 0x1D).
isr_29:
        mov     edi, 0x1D
; void sev_terminate(uint32_t code): GHCB MSR protocol termination request (GHCB spec 56421,
; 2.3.1 "Termination Request": GHCBInfo 0x100, set 0xA in bits 15:12, code in bits 23:16;
; sev.h), VMGEXIT, halt. SEV-ES/SNP only; never runs under TCG.
sev_terminate:
        mov     ebx, edi
        and     rsp, -16
        call    secret_wipe
        movzx   eax, bl
        shl     eax, 16
        or      eax, 0x100 | (0xA << 12)
        xor     edx, edx
        mov     ecx, 0xC0010130
        wrmsr
        db      0xF3, 0x0F, 0x01, 0xD9  ; VMGEXIT (rep vmmcall)
        jmp     halt_forever

isr_2:                                  ; NMI: note it and return to the hlt loop
        mov     byte [nmi_seen], 1
        iretq

; Vectors 8, 10..14, 17, 21 and 30 push an error code (AMD64 APM vol 2, 8.2); for the others
; a zero is pushed, so exc_common sees the same frame. 2 (NMI) and 29 (#VC) are above.
%assign v 0
%rep 32
%if v != 2 && v != 29
isr_%[v]:
%if !(v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 30)
        push    0
%endif
        push    v
        jmp     exc_common
%endif
%assign v v + 1
%endrep

        section .rodata
        align   8
isr_table:
%assign i 0
%rep 32
        dq      isr_%[i]
%assign i i + 1
%endrep

; ---- GDT in RAM: 0x08 code64, 0x10 data, 0x18 TSS (16 bytes, filled in by cpu_init) ----
        section .data
        align   16
gdt:
        dq      0
        dq      0x00AF9A000000FFFF
        dq      0x00CF92000000FFFF
        dq      0, 0
gdt_end:
gdt_desc:
        dw      gdt_end - gdt - 1
        dq      gdt
