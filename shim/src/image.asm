; sevshim pflash0 image (layout ovmf-4m), assembled as one flat file of exactly 0x37C000 bytes.
;
;   offset 0x000000  0xFF filler (erased-flash value)
;   offset 0x34C000  policy region, 16 KiB, all zero in the template (builder writes the policy)
;   offset 0x35C000  C payload (flat binary linked at 1 MiB), then 0xFF filler
;   offset 0x37B000  stage 1: 16-bit entry, 32-bit page-table setup, long-mode switch,
;                    the GUIDed footer table (docs/formats.md section 4), reset vector at end-0x10
;
; Stage 1 is the only code that ever runs from flash. It copies the payload to RAM and jumps
; there in 64-bit mode; everything else (including all flash programming) runs from RAM.
; PAYLOAD_BIN is passed with -DPAYLOAD_BIN='"path"' by the Makefile.

%include "layout.inc"

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

entry16:
        cli
        cld
        o32 lgdt [cs:0xF000 + (gdt32_desc - stage1)]   ; CS base 0xFFFF0000, stage1 = 0xFFFFF000
        mov     eax, cr0
        and     eax, 0x9FFFFFFF          ; caches on (CD=NW=0)
        or      al, 1                    ; PE
        mov     cr0, eax
        jmp     dword 0x08:entry32

; SEV-ES AP reset target (footer entry): the shim is single-CPU, so an AP just parks here.
ap_park:
        cli
        hlt
        jmp     ap_park

        bits    32
entry32:
        mov     ax, 0x10
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     fs, ax
        mov     gs, ax

        ; identity page tables for 0..4 GiB with 2 MiB pages: PML4, PDPT, 4 PDs
        mov     edi, SHIM_RAM_PAGETABLES
        mov     ecx, 6 * 4096 / 4
        xor     eax, eax
        rep     stosd
        mov     dword [SHIM_RAM_PAGETABLES], SHIM_RAM_PAGETABLES + 0x1000 + 3
        mov     edi, SHIM_RAM_PAGETABLES + 0x1000
        mov     eax, SHIM_RAM_PAGETABLES + 0x2000 + 3
        mov     ecx, 4
.pdpt:  mov     [edi], eax
        add     eax, 0x1000
        add     edi, 8
        loop    .pdpt
        mov     edi, SHIM_RAM_PAGETABLES + 0x2000
        mov     eax, 0x83                ; present, writable, 2 MiB page
        mov     ecx, 2048
.pd:    mov     [edi], eax
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
