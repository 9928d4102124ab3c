package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// A work directory (--work) holds QEMU's QMP and gdbstub sockets, the migration socket and
// the consoles; the emulated PSP's state directory (--state) holds the platform's private
// keys. Whoever can write to either can put their own socket where hostctl connects and read
// what hostctl sends (the plaintext launch secret over gdb.sock, the decrypted guest RAM
// over migrate.sock). So hostctl only uses such a directory if it is a real directory (not
// a symbolic link) owned by the caller with no group or other access, under parents that
// no other user can rename it in (owned by root or the caller, and not writable by others
// unless sticky, as /tmp is). A missing directory is created with mode 0700. See
// docs/hostctl.md.

func ownerName(uid uint32) string { return vmm.OwnerName(uid) }

// checkPrivateDir refuses path unless it is a directory (lstat: no symlink) owned by the
// effective uid with no group/other permission bits. what names the flag for the message.
func checkPrivateDir(what, path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s %s is a symbolic link: refused (whoever controls the link decides where hostctl's sockets and keys go); pass the real directory", what, path)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s %s is not a directory (mode %v)", what, path, st.Mode())
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s %s: cannot read its owner", what, path)
	}
	me := uint32(os.Geteuid())
	if sys.Uid != me {
		return fmt.Errorf("%s %s is owned by %s, not by you (%s), mode %04o: refused, its owner can swap the sockets hostctl connects to and read what it sends; remove it, or pass a directory you own (a missing one is created with mode 0700)",
			what, path, ownerName(sys.Uid), ownerName(me), st.Mode().Perm())
	}
	if p := st.Mode().Perm(); p&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o (owner %s): refused, group or others can reach it; chmod 700 %s, or pass a new directory", what, path, p, ownerName(sys.Uid), path)
	}
	return checkParents(what, path)
}

// checkParents refuses a directory whose parents let another user rename or replace it: every
// parent must be owned by root or the caller and not be group/other-writable unless sticky.
func checkParents(what, path string) error {
	me := uint32(os.Geteuid())
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("%s %s: parent %s: %w", what, path, d, err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s %s: cannot read the owner of %s", what, path, d)
		}
		if sys.Uid != 0 && sys.Uid != me {
			return fmt.Errorf("%s %s: its parent %s is owned by %s, who can replace it: refused; use a directory under one you or root own", what, path, d, ownerName(sys.Uid))
		}
		if st.Mode().Perm()&0o022 != 0 && st.Mode()&fs.ModeSticky == 0 {
			return fmt.Errorf("%s %s: its parent %s has mode %04o (writable by group or others, not sticky), so another user can rename it and put their own in its place: refused; use a directory under a private parent", what, path, d, st.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// privateDir returns the absolute path of dir after creating it (0700) if it is missing and
// checking it with checkPrivateDir.
func privateDir(what, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
		if err := checkParentsExisting(what, abs); err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return "", fmt.Errorf("%s %s: %w", what, abs, err)
		}
		// Mkdir, not MkdirAll: if someone created it in the meantime, the check below
		// judges theirs.
		if err := os.Mkdir(abs, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%s %s: %w", what, abs, err)
		}
	}
	if err := checkPrivateDir(what, abs); err != nil {
		return "", err
	}
	return abs, nil
}

// checkParentsExisting runs checkParents from the nearest existing ancestor of path.
func checkParentsExisting(what, path string) error {
	d := filepath.Dir(path)
	for {
		if _, err := os.Lstat(d); err == nil {
			return checkParents(what, filepath.Join(d, filepath.Base(path)))
		}
		if d == filepath.Dir(d) {
			return nil
		}
		d = filepath.Dir(d)
	}
}
