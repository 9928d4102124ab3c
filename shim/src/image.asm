; sevshim pflash0 image: one flat file of SHIM_IMAGE_SIZE bytes (the code size of its layout)
;   offset 0         0xFF filler (erased-flash value); the offsets below are the same in every layout
;   end-0x30000      policy region, 16 KiB, all zero in the template (builder writes the policy)
;   end-0x20000      C payload (flat binary linked at 1 MiB), then 0xFF filler
;   end-0x1000       stage 1: 16-bit entry, 32-bit IDT (#VC), SEV detection, page tables,
;                    long-mode switch, the GUIDed footer table (docs/formats.md section 4),
;                    reset vector at end-0x10
; Stage 1 is the only code that ever runs from flash: it copies the payload to RAM and jumps
; there in 64-bit mode; all else (including all flash programming) runs from RAM.

%include "layout.inc"                  ; printed from include/sevshim/layout.h (shim/Makefile)

        org     SHIM_IMAGE_BASE
        bits    16

; ---------------------------------------------------------------------------------------------
        times   (SHIM_POLICY_GPA - SHIM_IMAGE_BASE) - ($ - $$) db 0xFF
policy_region:
        times   SHIM_POLICY_SIZE db 0

        times   (SHIM_PAYLOAD_GPA - SHIM_IMAGE_BASE) - ($ - $$) db 0xFF
payload_start:
        incbin  PAYLOAD_BIN
payload_end:
        ; a payload that runs into stage 1 makes this count negative: nasm stops with an error
        times   (SHIM_STAGE1_GPA - SHIM_IMAGE_BASE) - ($ - $$) db 0xFF

; ---------------------------------------------------------------------------------------------
; Stage 1, last 4 KiB of the image (GPA 0xFFFFF000). At reset: real mode, CS base 0xFFFF0000.
; Host input read here: CPUID 0x80000000 / 0x8000001F, MSR SEV_STATUS (only if the leaf
; says SEV exists; elsewhere it raises #GP) and EFER. The C-bit position is range-checked
; before it is used as a shift count.
; Under SEV, with paging off every data access is private (AMD64 APM vol 2, 15.34.5), so the
; payload copy and the tables land encrypted; with paging on, data accesses use the PTE's
; C-bit, fetches and table walks are always private. So stage 1 maps 0..4 GiB with the C-bit
; (the C code touches no MMIO or shared page before it loads its own tables, src/cpu.c
; sev_mem_init). Under SEV-ES/SNP the first CPUID raises #VC (vector 29): stage1_vc asks the
; hypervisor to terminate the guest (GHCB MSR protocol). No SEV branch runs under QEMU TCG;
; docs/shim.md "SEV memory map" says what was tested where.

%define ABS(l) ((l) - $$ + SHIM_IMAGE_BASE)
; GHCB termination value: set 0xA, code 0x1D (SEVSHIM_GHCB_TERM(SEVSHIM_GHCB_TERM_VC), sev.h)
%define GHCB_TERM_VC (0x100 | (0xA << 12) | (0x1D << 16))

stage1:
        align   8, db 0xFF
gdt32:
        dq      0
        dq      0x00CF9A000000FFFF      ; 0x08: code, 32-bit, flat
        dq      0x00CF92000000FFFF      ; 0x10: data, flat
        dq      0x00AF9A000000FFFF      ; 0x18: code, 64-bit
gdt32_end:
gdt32_desc:
        dw      gdt32_end - gdt32 - 1
        dd      gdt32
idt32_desc:
        dw      idt32_end - idt32 - 1
        dd      idt32
ap_idt_desc:                            ; limit 0: any vector on a parked AP is a shutdown
        dw      0
        dd      0

entry16:
        cli
        cld
        o32 lgdt [cs:0xF000 + (gdt32_desc - stage1)]   ; CS base 0xFFFF0000, stage1 = 0xFFFFF000
        mov     eax, cr0
        and     eax, 0x9FFFFFFF          ; caches on (CD=NW=0)
        or      al, 1                    ; PE
        mov     cr0, eax
        jmp     dword 0x08:entry32

; SEV-ES AP reset target (footer entry): the shim is single-CPU, so an AP parks here. With an
; IDT limit of 0 any NMI/INIT-SIPI the host sends ends in a shutdown instead of running what
; the zeroed IVT at 0 points to. HLT is an automatic exit under SEV-ES (no #VC).
ap_park:
        cli
        o32 lidt [cs:0xF000 + (ap_idt_desc - stage1)]
.hlt:   hlt
        jmp     .hlt

        bits    32
entry32:
        mov     ax, 0x10
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     fs, ax
        mov     gs, ax
        mov     esp, SHIM_RAM_PAGETABLES ; exception frames only (RAM below the tables)
        lidt    [idt32_desc]             ; before the first CPUID: #VC must not triple-fault

        ; SEV detection (APM vol 2, 15.34.1): ebp = C-bit mask, bits 63:32 (0: no SEV)
        xor     ebp, ebp
        mov     eax, 0x80000000
        cpuid
        cmp     eax, 0x8000001F
        jb      .tables
        mov     eax, 0x8000001F
        cpuid
        test    al, 2                    ; EAX bit 1: SEV supported
        jz      .tables
        mov     esi, ebx                 ; EBX[5:0]: C-bit position
        mov     ecx, 0xC0010131          ; SEV_STATUS
        rdmsr
        test    al, 1                    ; bit 0: SEV active for this guest
        jz      .tables
        mov     ecx, esi
        and     ecx, 0x3F
        sub     ecx, 32
        jb      stage1_cbit_bad          ; below 32: would alias the addresses mapped here
        cmp     ecx, 51 - 32
        ja      stage1_cbit_bad          ; above 51: not an address bit of a PTE
        mov     ebp, 1
        shl     ebp, cl
.tables:
        ; identity tables for 0..4 GiB, 2 MiB pages: PML4, PDPT, 4 PDs; C-bit (ebp) on every
        ; entry. src/cpu.c replaces them with the final map (src/sev.c).
        mov     edi, SHIM_RAM_PAGETABLES
        mov     ecx, 6 * 4096 / 4
        xor     eax, eax
        rep     stosd
        mov     dword [SHIM_RAM_PAGETABLES], SHIM_RAM_PAGETABLES + 0x1000 + 3
        mov     [SHIM_RAM_PAGETABLES + 4], ebp
        mov     edi, SHIM_RAM_PAGETABLES + 0x1000
        mov     eax, SHIM_RAM_PAGETABLES + 0x2000 + 3
        mov     ecx, 4
.pdpt:  mov     [edi], eax
        mov     [edi + 4], ebp
        add     eax, 0x1000
        add     edi, 8
        loop    .pdpt
        mov     edi, SHIM_RAM_PAGETABLES + 0x2000
        mov     eax, 0x83                ; present, writable, 2 MiB page
        mov     ecx, 2048
.pd:    mov     [edi], eax
        mov     [edi + 4], ebp
        add     eax, 0x200000
        add     edi, 8
        loop    .pd

        ; copy the payload from flash to its link address (rep movsb: no 4 GiB pointer wrap)
        mov     esi, payload_start
        mov     edi, SHIM_RAM_PAYLOAD
        mov     ecx, payload_end - payload_start
        rep     movsb

        ; long mode: PAE, CR3, EFER.LME, paging
        mov     eax, cr4
        or      eax, 0x20
        mov     cr4, eax
        mov     eax, SHIM_RAM_PAGETABLES
        mov     cr3, eax
        mov     ecx, 0xC0000080
        rdmsr
        or      eax, 0x100
        wrmsr
        mov     eax, cr0
        or      eax, 0x80000000
        mov     cr0, eax
        jmp     0x18:SHIM_RAM_PAYLOAD    ; into the RAM copy, 64-bit; never back to flash

; #VC (vector 29) exists only under SEV-ES/SNP: there is no GHCB, so no console either. Wipe
; the secret page, then GHCB MSR protocol termination request (GHCB spec 56421, 2.3.1,
; "Termination Request": GHCBInfo 0x100, reason set 0xA = sevshim, code 0x1D = #VC), VMGEXIT.
stage1_vc:
        xor     esi, esi                 ; no message: terminate
        jmp     stage1_refuse
; Refusals stage 1 makes itself (port I/O works under plain SEV): wipe the secret page, print
; the line to COM1 (\r\n) and debugcon (\n) as src/console.c does, halt.
stage1_cbit_bad:
        mov     esi, msg_e083
        jmp     stage1_refuse
stage1_fault:                            ; any other vector (e.g. #GP from a lying SEV leaf)
        mov     esi, msg_e090
stage1_refuse:
        cld
        mov     edi, SHIM_RAM_SECRET
        mov     ecx, SHIM_RAM_SECRET_SIZE / 4
        xor     eax, eax
        rep     stosd
        test    esi, esi
        jz      .terminate
.next:  lodsb
        test    al, al
        jz      .halt
        cmp     al, 10
        jne     .put
        mov     al, 13
        call    com1_put
        mov     al, 10
.put:   call    com1_put
        mov     dx, 0x402
        out     dx, al
        jmp     .next
.terminate:
        mov     ecx, 0xC0010130          ; GHCB MSR
        mov     eax, GHCB_TERM_VC
        xor     edx, edx
        wrmsr
        db      0xF3, 0x0F, 0x01, 0xD9   ; VMGEXIT (rep vmmcall)
.halt:  cli
        hlt
        jmp     .halt
com1_put:                                ; al = byte; bounded wait for THR empty (LSR bit 5)
        mov     ah, al
        mov     dx, 0x3FD
        mov     ecx, 100000
.wait:  in      al, dx
        test    al, 0x20
        jnz     .ready
        loop    .wait
.ready: mov     al, ah
        mov     dx, 0x3F8
        out     dx, al
        ret

msg_e083: db    "SEVSHIM ERROR E083 sev-cbit-invalid", 10, "SEVSHIM HALT", 10, 0
msg_e090: db    "SEVSHIM ERROR E090 cpu-exception", 10, "SEVSHIM HALT", 10, 0

        align   8, db 0xFF
idt32:                                   ; 32-bit interrupt gates, selector 0x08
%assign v 0
%rep 32
%if v == 29
        dw      ABS(stage1_vc) & 0xFFFF, 0x08, 0x8E00, ABS(stage1_vc) >> 16
%else
        dw      ABS(stage1_fault) & 0xFFFF, 0x08, 0x8E00, ABS(stage1_fault) >> 16
%endif
%assign v v + 1
%endrep
idt32_end:

; ---------------------------------------------------------------------------------------------
; GUIDed footer table: entries are data || u16 len || GUID, walking backwards from end-0x32.
%define TABLE_ENTRIES_LEN  (26 + 26 + 26 + 22)
%define TABLE_LEN          (TABLE_ENTRIES_LEN + 2 + 16)

        times   (SHIM_IMAGE_SIZE - 0x32 - TABLE_ENTRIES_LEN) - ($ - $$) db 0xFF
table_start:
        ; sevshim info 138ba441-15dc-4aec-aaad-0397d4fdd549: u32 shim_format, u32 layout_id
        dd      1, SHIM_LAYOUT_ID
        dw      26
        db      0x41,0xa4,0x8b,0x13,0xdc,0x15,0xec,0x4a,0xaa,0xad,0x03,0x97,0xd4,0xfd,0xd5,0x49
        ; sevshim policy 0ac6472c-d1f2-4ae6-8da8-f00f54648a10: u32 gpa, u32 size
        dd      SHIM_POLICY_GPA, SHIM_POLICY_SIZE
        dw      26
        db      0x2c,0x47,0xc6,0x0a,0xf2,0xd1,0xe6,0x4a,0x8d,0xa8,0xf0,0x0f,0x54,0x64,0x8a,0x10
        ; SEV secret block 4c2eb361-7d9b-4cc3-8081-127c90d3d294: u32 base, u32 size
        dd      SHIM_RAM_SECRET, SHIM_RAM_SECRET_SIZE
        dw      26
        db      0x61,0xb3,0x2e,0x4c,0x9b,0x7d,0xc3,0x4c,0x80,0x81,0x12,0x7c,0x90,0xd3,0xd2,0x94
        ; SEV-ES AP reset block 00f771de-1a7e-4fcb-890e-68c77e2fb44e: CS base 31:16 | IP 15:0
        dd      ap_park
        dw      22
        db      0xde,0x71,0xf7,0x00,0x7e,0x1a,0xcb,0x4f,0x89,0x0e,0x68,0xc7,0x7e,0x2f,0xb4,0x4e
        dw      TABLE_LEN
        ; footer GUID 96b582de-1fb2-45f7-baea-a366c55a082d at end-0x30
        db      0xde,0x82,0xb5,0x96,0xb2,0x1f,0xf7,0x45,0xba,0xea,0xa3,0x66,0xc5,0x5a,0x08,0x2d

        ; reset area: end-0x20 .. end-0x10 filler, reset vector at end-0x10 (GPA 0xFFFFFFF0)
        times   (SHIM_IMAGE_SIZE - 0x10) - ($ - $$) db 0xFF
        bits    16
reset_vector:
        jmp     near entry16
        times   SHIM_IMAGE_SIZE - ($ - $$) db 0xFF
