package verifyref

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/keys"
)

// FuzzCheck explores the shim decision with a mutated manifest, image size, image content
// (modelled by a patch: any patch makes a different image, hence a different digest) and vars
// size, against a fixed policy. Check must not panic, must be deterministic and must only say
// OK for exactly the signed inputs. Hashing is modelled so each input costs microseconds; the
// real-hash path is covered by TestGoldenChecks and the C differential test.
func FuzzCheck(f *testing.F) {
	key := keys.DeriveTestKey("fuzzcheck")
	img := make([]byte, 0x37C000)
	m, _ := manifest.NewManifest(1, img, 5, "fuzz", &key.PublicKey)
	good, _ := m.SignDeterministic(key)
	goodDigest := m.ImageDigest
	allowedVars := sha512.Sum384([]byte("allowed vars"))
	pol := &policy.Policy{Layout: 1, Signers: []policy.Signer{{PublicKey: &key.PublicKey, MinVersion: 4}}, DeniedVersions: []uint64{9},
		VarsMode: policy.VarsAllow, AllowedVars: [][48]byte{allowedVars}}
	f.Add(good, []byte{}, int32(0), true, true, false, uint32(0))
	f.Add(good, []byte{1}, int32(0), true, true, true, uint32(0x84000))
	f.Add(good[:300], []byte{}, int32(-1), true, true, false, uint32(0))
	f.Add(good, []byte{}, int32(1), true, false, true, uint32(0x84001))
	f.Fuzz(func(t *testing.T, man, patch []byte, sizeDelta int32, mp, ip, vp bool, varsLen uint32) {
		n := int64(len(img)) + int64(sizeDelta)
		if n < 0 {
			return
		}
		digest := func() [48]byte {
			if len(patch) == 0 && sizeDelta == 0 {
				return goodDigest
			}
			var b []byte
			b = binary.LittleEndian.AppendUint64(b, uint64(n))
			return sha512.Sum384(append(b, patch...))
		}
		// the vars digest: the allowed one iff the patch is empty
		varsDigest := func() [48]byte {
			if len(patch) == 0 {
				return allowedVars
			}
			return sha512.Sum384(patch)
		}
		c1 := check(pol, man, mp, uint64(n), digest, ip, int(varsLen), varsDigest, vp)
		c2 := check(pol, bytes.Clone(man), mp, uint64(n), digest, ip, int(varsLen), varsDigest, vp)
		if c1 != c2 || !c1.Known() {
			t.Fatalf("unstable or unknown verdict %v %v", c1, c2)
		}
		if c1 == shimerr.OK {
			if !mp || !ip || !bytes.Equal(man, good) || len(patch) != 0 || sizeDelta != 0 || (vp && varsLen != 0x84000) {
				t.Fatal("OK for inputs that are not the signed ones")
			}
		}
	})
}
