; sevshim test BIOS: pflash0 image of the ovmf-4m layout (0x37C000 bytes, top-aligned at 4 GiB).
;
;   0xFF filler
;   end-0x9000  C payload (32-bit, linked at 0x300000), at most 0x8000 bytes
;   end-0x1000  GDT, 16->32-bit entry (copies the payload to RAM, calls tb_main), the OVMF-style
;               footer table with one entry (SEV secret block SECRET_BASE/SECRET_SIZE), reset vector
;
; No paging, no long mode: the payload runs in flat 32-bit protected mode with interrupts off.

%define IMAGE_SIZE   0x37C000
%define IMAGE_BASE   (0x100000000 - IMAGE_SIZE)
%define PAYLOAD_GPA  (0x100000000 - 0x9000)
%define STAGE_GPA    (0x100000000 - 0x1000)
%define PAYLOAD_RAM  0x300000
%define STACK_TOP    0x2FF000

        org     IMAGE_BASE
        bits    16
        times   (PAYLOAD_GPA - IMAGE_BASE) - ($ - $$) db 0xFF
payload_start:
        incbin  PAYLOAD_BIN
payload_end:
        times   (STAGE_GPA - IMAGE_BASE) - ($ - $$) db 0xFF

stage:
        align   8, db 0xFF
gdt:
        dq      0
        dq      0x00CF9A000000FFFF      ; 0x08 code 32-bit flat
        dq      0x00CF92000000FFFF      ; 0x10 data flat
gdt_end:
gdt_desc:
        dw      gdt_end - gdt - 1
        dd      gdt

entry16:
        cli
        cld
        o32 lgdt [cs:0xF000 + (gdt_desc - stage)]
        mov     eax, cr0
        and     eax, 0x9FFFFFFF
        or      al, 1
        mov     cr0, eax
        jmp     dword 0x08:entry32

        bits    32
entry32:
        mov     ax, 0x10
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     fs, ax
        mov     gs, ax
        mov     esp, STACK_TOP
        mov     esi, payload_start
        mov     edi, PAYLOAD_RAM
        mov     ecx, payload_end - payload_start
        rep     movsb
        mov     eax, PAYLOAD_RAM        ; tb_main is the first function (.text.entry)
        call    eax
.dead:  cli
        hlt
        jmp     .dead

; footer table: data || u16 len || GUID, then u16 total, footer GUID at end-0x30
%define TABLE_LEN (26 + 2 + 16)
        times   (IMAGE_SIZE - 0x32 - 26) - ($ - $$) db 0xFF
        ; SEV secret block 4c2eb361-7d9b-4cc3-8081-127c90d3d294: u32 base, u32 size
        dd      SECRET_BASE, SECRET_SIZE
        dw      26
        db      0x61,0xb3,0x2e,0x4c,0x9b,0x7d,0xc3,0x4c,0x80,0x81,0x12,0x7c,0x90,0xd3,0xd2,0x94
        dw      TABLE_LEN
        db      0xde,0x82,0xb5,0x96,0xb2,0x1f,0xf7,0x45,0xba,0xea,0xa3,0x66,0xc5,0x5a,0x08,0x2d
        times   (IMAGE_SIZE - 0x10) - ($ - $$) db 0xFF
        bits    16
        jmp     near entry16
        times   IMAGE_SIZE - ($ - $$) db 0xFF
