package manifest

import (
	"crypto/sha512"
	"fmt"
	"os"

	"github.com/sevshim/sevshim/pkg/atomicfile"
)

// EncodeBundle returns manifest || image after checking that they belong together (the
// manifest parses and its image_size and image_digest match the image).
func EncodeBundle(manifest, image []byte) ([]byte, error) {
	if _, err := checkPair(manifest, image); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(manifest)+len(image))
	out = append(out, manifest...)
	return append(out, image...), nil
}

func checkPair(manifest, image []byte) (*Manifest, error) {
	m, err := ParseManifest(manifest)
	if err != nil {
		return nil, err
	}
	if uint64(len(image)) != m.ImageSize {
		return nil, errf("image_size", "manifest says 0x%x bytes, image has 0x%x", m.ImageSize, len(image))
	}
	if d := sha512.Sum384(image); d != m.ImageDigest {
		return nil, errf("image_digest", "image SHA-384 %x… differs from the manifest's %x…", d[:8], m.ImageDigest[:8])
	}
	return m, nil
}

// SplitBundle splits a bundle into manifest and image and checks the framing (size = 352 +
// image_size) and the image digest. It does not verify the signature.
func SplitBundle(b []byte) (manifest, image []byte, m *Manifest, err error) {
	if len(b) < ManifestSize {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes is shorter than a manifest (%d)", ErrNotBundle, len(b), ManifestSize)
	}
	manifest, image = b[:ManifestSize], b[ManifestSize:]
	m, err = ParseManifest(manifest)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrNotBundle, err)
	}
	if uint64(len(image)) != m.ImageSize {
		return nil, nil, nil, fmt.Errorf("%w: size %d is not 352 + image_size (0x%x)", ErrNotBundle, len(b), m.ImageSize)
	}
	if d := sha512.Sum384(image); d != m.ImageDigest {
		return nil, nil, nil, errf("image_digest", "image SHA-384 %x… differs from the manifest's %x…", d[:8], m.ImageDigest[:8])
	}
	return manifest, image, m, nil
}

// WriteBundle writes manifest || image to path atomically (temp file in the same directory,
// fsync, rename).
func WriteBundle(path string, manifest, image []byte) error {
	b, err := EncodeBundle(manifest, image)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

// ReadBundle reads and splits a bundle file (see SplitBundle). Errors name the file.
func ReadBundle(path string) (manifest, image []byte, m *Manifest, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	manifest, image, m, err = SplitBundle(b)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return manifest, image, m, nil
}
