package figures

// Table is every row `make bench` prints, in order, with the goals of the performance work
// (README.md, "Performance"). Times are host wall clock, taken when a console line arrived.
var Table = []Row{
	// boot to OVMF's BdsDxe: QEMU B through the shim (resumed from A's READY state) and stock
	// OVMF, paired per run, the order alternating
	{Name: "boot.ratio.paired", Unit: "x", Goal: "<= 1.05", Note: "B start->BdsDxe through the shim / plain OVMF start->BdsDxe, same run"},
	{Name: "boot.plain.start_to_bdsdxe", Unit: "s", Note: "stock OVMF: QEMU start -> BdsDxe"},
	{Name: "boot.shim.start_to_bdsdxe", Unit: "s", Note: "through the shim: QEMU B start -> BdsDxe"},
	{Name: "boot.shim.cont_to_bdsdxe", Unit: "s", Note: "through the shim: cont -> BdsDxe"},
	{Name: "boot.shim.handoff_to_bdsdxe", Unit: "s", Note: "HANDOFF -> BdsDxe (OVMF itself in B)"},
	{Name: "b.start_to_qmp", Unit: "s", Note: "QEMU B start -> QMP connected"},
	{Name: "b.qmp_to_paused", Unit: "s", Note: "QMP connected -> READY state loaded (paused)"},
	{Name: "a.start_to_ready", Unit: "s", Note: "QEMU A start -> SEVSHIM READY"},
	{Name: "a.save_state", Unit: "s", Note: "A: stop + migrate to file"},
	// the shim's resume, from its timestamped debugcon lines
	{Name: "resume.cont_to_handoff", Unit: "s", Goal: "<= 0.35 s", Note: "cont -> SEVSHIM HANDOFF (total of the steps below)"},
	{Name: "resume.cont_to_wake", Unit: "s", Note: "cont -> WAKE (NMI taken)"},
	{Name: "resume.wake_to_loaded", Unit: "s", Note: "WAKE -> LOADED (fw_cfg read of manifest, bios, vars)"},
	{Name: "resume.loaded_to_verified", Unit: "s", Note: "LOADED -> VERIFIED (SHA-384 + ECDSA P-384 + policy)"},
	{Name: "resume.verified_to_flashed", Unit: "s", Note: "VERIFIED -> FLASHED (CFI erase/program/read-back)"},
	{Name: "resume.flashed_to_handoff", Unit: "s", Note: "FLASHED -> HANDOFF"},
	// hostctl export + receive against plain QEMU migration, paired per run
	{Name: "migrate.ratio.paired", Unit: "x", Goal: "<= 1.15", Note: "256 MiB guest, 48 MiB dirty: export+receive->HANDOFF / migrate-to-file+incoming->HANDOFF, same run"},
	{Name: "migrate.sevshim.export_receive", Unit: "s", Note: "hostctl export + receive up to HANDOFF"},
	{Name: "migrate.sevshim.export", Unit: "s", Note: "hostctl export (SEND_* packets into the package, fsync)"},
	{Name: "migrate.sevshim.receive_to_handoff", Unit: "s", Note: "hostctl receive start -> HANDOFF"},
	{Name: "migrate.plain.save_incoming", Unit: "s", Note: "plain: migrate to file + QEMU -incoming up to HANDOFF"},
	{Name: "migrate.package_vs_stream", Unit: "x", Note: "guest package bytes / its raw migration stream bytes"},
	// SEV transport packets against this machine's limit, rounds alternating
	{Name: "packet.seal.ratio", Unit: "x", Goal: ">= 0.95", Note: "packet seal 4 KiB / limit (AES-128-CTR + HMAC-SHA-256 time added), one core"},
	{Name: "packet.open.ratio", Unit: "x", Goal: ">= 0.95", Note: "packet open 4 KiB / limit, one core"},
	{Name: "packet.seal.mbps", Unit: "MB/s", Note: "sev.Transport.Seal, 4 KiB pages (10^6 bytes/s)"},
	{Name: "packet.open.mbps", Unit: "MB/s", Note: "sev.Transport.Open, 4 KiB pages"},
	{Name: "packet.limit.mbps", Unit: "MB/s", Note: "limit: Go's AES-128-CTR + HMAC-SHA-256 over the same 4 KiB"},
	{Name: "packet.limit.aes_ctr_mbps", Unit: "MB/s", Note: "Go's AES-128-CTR alone, 4 KiB"},
	{Name: "packet.limit.hmac_mbps", Unit: "MB/s", Note: "Go's HMAC-SHA-256 alone, 4 KiB"},
	// the Linux guest after the chain: B from the READY state with the guest kernel
	{Name: "guest.receive_to_ready", Unit: "s", Note: "QEMU B start (incoming READY state) -> agent READY on its port"},
	{Name: "guest.load", Unit: "s", Note: "B start -> cont (state loaded)"},
	{Name: "guest.shim", Unit: "s", Note: "cont -> HANDOFF"},
	{Name: "guest.ovmf", Unit: "s", Note: "HANDOFF -> kernel start (agent's line time - /proc/uptime; EFI stub counts as OVMF)"},
	{Name: "guest.kernel", Unit: "s", Note: "kernel start -> agent's first console line"},
	{Name: "guest.agent", Unit: "s", Note: "agent's first line -> READY on its port"},
	{Name: "size.initramfs_bytes", Unit: "B", Note: "build/guest/initramfs.cpio"},
	{Name: "size.agent_bytes", Unit: "B", Note: "build/guest/agent (static)"},
	// libvirt against hostctl's own QEMU, the same package, paired per run
	{Name: "libvirt.ratio.paired", Unit: "x", Note: "receive -> HANDOFF through libvirt / own QEMU, same run"},
	{Name: "libvirt.libvirt.receive_to_handoff", Unit: "s", Note: "hostctl receive --libvirt: start -> HANDOFF"},
	{Name: "libvirt.qemu.receive_to_handoff", Unit: "s", Note: "hostctl receive, own QEMU: start -> HANDOFF"},
	{Name: "libvirt.libvirt.load", Unit: "s", Note: "libvirt: QEMU B started -> stream loaded (libvirt's restore)"},
	{Name: "libvirt.qemu.load", Unit: "s", Note: "own QEMU: QEMU B started -> stream loaded"},
	{Name: "libvirt.libvirt.resume", Unit: "s", Note: "libvirt: loaded -> resumed"},
	{Name: "libvirt.qemu.resume", Unit: "s", Note: "own QEMU: loaded -> resumed"},
	// the shim's size (build/shim)
	{Name: "size.shim_image_bytes", Unit: "B", Note: "shim image = pflash0 size"},
	{Name: "size.payload_bin_bytes", Unit: "B", Goal: "<= 65536", Note: "code+data copied to RAM (payload.bin, BearSSL included)"},
	{Name: "size.payload_text_bytes", Unit: "B", Note: "executable sections"},
	{Name: "size.payload_rodata_bytes", Unit: "B", Note: "read-only data"},
	{Name: "size.payload_data_bytes", Unit: "B", Note: "writable data"},
	{Name: "size.payload_bss_bytes", Unit: "B", Note: "zero-initialised RAM (stacks included; not in flash)"},
	{Name: "size.shim_c_asm_lines", Unit: "lines", Goal: "<= 3000", Note: "shim/src/*.{c,asm,inc} + shim/include (BearSSL excluded)"},
}
