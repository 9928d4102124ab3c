#!/usr/bin/env python3
"""Writes the seed corpus test/corpus-parsers for fuzz_parsers (format: see fuzz_parsers.c):
footer tables with and without a secret block, EFI secret tables, TPM responses."""
import hashlib, os, struct, uuid

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus-parsers")
os.makedirs(out, exist_ok=True)
for f in os.listdir(out):
    os.remove(os.path.join(out, f))

def g(s):
    return uuid.UUID(s).bytes_le

FOOTER = g("96b582de-1fb2-45f7-baea-a366c55a082d")
SECRET = g("4c2eb361-7d9b-4cc3-8081-127c90d3d294")
RESET = g("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
TABLE = g("1e74f542-71dd-4d66-963e-ef4287ff173b")

def image(entries, size=0x200):
    body = b""
    for guid, data in entries:          # nearest to the footer first
        body = data + struct.pack("<H", len(data) + 18) + guid + body
    tail = body + struct.pack("<H", len(body) + 18) + FOOTER + b"\xff" * 0x20
    return b"\xff" * (size - len(tail)) + tail

def table(*secrets):
    ents = b"".join(uuid.uuid4().bytes_le + struct.pack("<I", 20 + len(s)) + s for s in secrets)
    t = TABLE + struct.pack("<I", 20 + len(ents)) + ents
    return t + b"\0" * (-len(t) % 16)

def seed(name, sel, mode, img, rest):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([sel, mode]) + struct.pack("<H", len(img)) + img + rest)

blk = struct.pack("<II", 0x80C000, 0xC00)
seed("copy", 0, 0, image([(RESET, b"\x04\xb0\x80\x00"), (SECRET, blk)]), table(b"passphrase-123"))
seed("copy-require", 0, 1, image([(SECRET, blk)]), table(b"a" * 40, b"b" * 3))
seed("wipe", 0, 0, image([(SECRET, b"\0" * 8)]), table(b"x"))
seed("require-none", 0, 1, image([(RESET, b"\0" * 4)]), table(b"x"))
seed("no-secret", 0, 0, image([(SECRET, blk)]), b"\0" * 64)
seed("no-footer", 0, 0, b"\xff" * 64, table(b"y"))

ev = bytes(216)  # the SEVSHEV2 event size (docs/formats.md section 7)
d384 = hashlib.sha384(ev).digest()
def pcr_rsp(banks):
    body = struct.pack(">I", len(banks)) + b"".join(struct.pack(">H", a) + d for a, d in banks)
    r = struct.pack(">I", len(body)) + body + b"\0\0\x01\0\0"
    return struct.pack(">HII", 0x8002, 10 + len(r), 0) + r
seed("tpm-pcr-event", 1, 0, b"", pcr_rsp([(0x0B, hashlib.sha256(ev).digest()), (0x0C, d384)]))
seed("tpm-startup", 1, 0, b"", struct.pack(">HII", 0x8001, 10, 0))
seed("tpm-error", 1, 0, b"", struct.pack(">HII", 0x8001, 10, 0x922))
print(len(os.listdir(out)))
