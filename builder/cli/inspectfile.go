package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sevshim/sevshim/builder/inspect"
	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/keys"
)

// maxWholeFile bounds what inspect reads into memory: every file it takes apart is a few MiB
// at most; a guest package (any size) is streamed.
const maxWholeFile = 64 << 20

// inspectFile reads path (and the --signer / --shim files) and explains it.
func inspectFile(path, signer, shim string) (*inspect.Report, error) {
	var opt inspect.Options
	if signer != "" {
		pb, err := os.ReadFile(signer)
		if err != nil {
			return nil, fmt.Errorf("--signer: %w", err)
		}
		if opt.Signer, err = keys.ParsePublicKeyPEM(pb); err != nil {
			return nil, fmt.Errorf("--signer %s: %w", signer, err)
		}
	}
	if shim != "" {
		var err error
		if opt.Shim, err = os.ReadFile(shim); err != nil {
			return nil, fmt.Errorf("--shim: %w", err)
		}
		if _, _, err := shimimage.ExtractPolicy(opt.Shim); err != nil {
			return nil, fmt.Errorf("--shim %s: %w", shim, err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, &inspect.Error{File: path, Kind: inspect.KindUnknown, Msg: "a directory; inspect explains one file"}
	}
	var magic [8]byte
	n, _ := io.ReadFull(f, magic[:])
	if n == len(magic) && string(magic[:]) == guestpkg.Magic {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return inspect.InspectPackage(path, f)
	}
	if st.Size() > maxWholeFile {
		return nil, &inspect.Error{File: path, Kind: inspect.KindUnknown,
			Msg: fmt.Sprintf("%d bytes, and not a guest package: no file inspect explains is that large", st.Size())}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return inspect.Inspect(path, b, opt)
}

// writeJSONError prints err as inspect --json's error object: {"file", "kind", "error"}.
func writeJSONError(w io.Writer, path string, err error) {
	out := inspect.Error{File: path, Kind: inspect.KindUnknown, Msg: err.Error()}
	var ie *inspect.Error
	if errors.As(err, &ie) {
		out = *ie
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	e.Encode(out)
}
