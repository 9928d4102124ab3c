// Package atomicfile writes a file so that a crash leaves either the old file or the whole new
// one, never a part: every file sevshim's tools write (keys, bundles, certificates, session
// files, work-directory state) goes through WriteFile.
package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile writes data to a temporary file in path's directory, sets mode, syncs it, renames
// it over path and syncs the directory, so the rename itself survives a crash. Errors name path
// and the reason, never the temporary file.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &wrapped{fmt.Sprintf("cannot write %s: directory %s does not exist", path, dir), err}
		}
		return writeError(path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return writeError(path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return writeError(path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return writeError(path, err)
	}
	if err := f.Close(); err != nil {
		return writeError(path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return writeError(path, err)
	}
	return syncDir(path, dir)
}

// syncDir makes the rename durable (fsync(2) on the directory). File systems that cannot sync
// a directory (EINVAL) have nothing to make durable.
func syncDir(path, dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return writeError(path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return writeError(path, err)
	}
	return nil
}

// wrapped is an error with its own message that still matches its cause (errors.Is).
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// writeError says why path could not be written without the temporary file's name: the
// reason of a *PathError or *LinkError (e.g. "permission denied", "no space left on device").
func writeError(path string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	return fmt.Errorf("cannot write %s: %w", path, err)
}

// WriteJSON writes v as indented JSON with a final newline through WriteFile.
func WriteJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteFile(path, append(b, '\n'), mode)
}

// ReadJSON reads the JSON file path into v; a decoding error names path.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
