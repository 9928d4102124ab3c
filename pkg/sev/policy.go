package sev

import (
	"fmt"
	"strings"
)

// Policy is the 32-bit SEV / SEV-ES guest policy.
type Policy uint32

// Policy bits.
const (
	PolicyNoDebug      Policy = 1 << 0 // DBG_DECRYPT/DBG_ENCRYPT refused
	PolicyNoKeySharing Policy = 1 << 1 // no key sharing with other guests
	PolicyES           Policy = 1 << 2 // SEV-ES required
	PolicyNoSend       Policy = 1 << 3 // SEND_* refused
	PolicyDomain       Policy = 1 << 4 // send only within the same domain (same OCA)
	PolicySEV          Policy = 1 << 5 // send only to AMD SEV platforms (chain to ARK)
	policyReserved     Policy = 0x3FF << 6
)

// NewPolicy builds a policy from flag bits and the minimum firmware API version.
func NewPolicy(flags Policy, apiMajor, apiMinor uint8) Policy {
	return flags&0x3F | Policy(apiMajor)<<16 | Policy(apiMinor)<<24
}

// Has reports whether all bits of f are set.
func (p Policy) Has(f Policy) bool { return p&f == f }

// MinAPI returns the minimum firmware API version the policy demands.
func (p Policy) MinAPI() (major, minor uint8) { return uint8(p >> 16), uint8(p >> 24) }

// AllowsPlatform reports whether firmware API v satisfies the policy's minimum.
func (p Policy) AllowsPlatform(v PlatformVersion) bool {
	maj, min := p.MinAPI()
	return v.AtLeast(maj, min)
}

// Validate rejects reserved bits.
func (p Policy) Validate() error {
	if p&policyReserved != 0 {
		return fmt.Errorf("policy %#08x: reserved bits 15:6 set", uint32(p))
	}
	return nil
}

func (p Policy) String() string {
	var f []string
	for _, x := range []struct {
		b Policy
		n string
	}{{PolicyNoDebug, "NODBG"}, {PolicyNoKeySharing, "NOKS"}, {PolicyES, "ES"}, {PolicyNoSend, "NOSEND"}, {PolicyDomain, "DOMAIN"}, {PolicySEV, "SEV"}} {
		if p.Has(x.b) {
			f = append(f, x.n)
		}
	}
	maj, min := p.MinAPI()
	if len(f) == 0 {
		f = []string{"none"}
	}
	return fmt.Sprintf("%#08x [%s] min API %d.%d", uint32(p), strings.Join(f, "|"), maj, min)
}

// SNPPolicy is the 64-bit SEV-SNP guest policy (a type for later use; note the inverted
// sense of DEBUG/SMT compared with SEV).
type SNPPolicy uint64

// SNP policy bits.
const (
	SNPPolicySMT             SNPPolicy = 1 << 16
	SNPPolicyReserved1       SNPPolicy = 1 << 17 // must be 1
	SNPPolicyMigrateMA       SNPPolicy = 1 << 18
	SNPPolicyDebug           SNPPolicy = 1 << 19
	SNPPolicySingleSocket    SNPPolicy = 1 << 20
	SNPPolicyCXLAllow        SNPPolicy = 1 << 21
	SNPPolicyMemAES256XTS    SNPPolicy = 1 << 22
	SNPPolicyRAPLDis         SNPPolicy = 1 << 23
	SNPPolicyCiphertextHide  SNPPolicy = 1 << 24
	SNPPolicyPageSwapDisable SNPPolicy = 1 << 25
	snpPolicyReserved        SNPPolicy = 0xFFFFFFFFFC000000
)

// ABIMin returns the minimum ABI version.
func (p SNPPolicy) ABIMin() (major, minor uint8) { return uint8(p >> 8), uint8(p) }

// Validate checks bit 17 is set and bits 63:26 are clear.
func (p SNPPolicy) Validate() error {
	if p&SNPPolicyReserved1 == 0 {
		return fmt.Errorf("snp policy %#x: bit 17 must be 1", uint64(p))
	}
	if p&snpPolicyReserved != 0 {
		return fmt.Errorf("snp policy %#x: reserved bits 63:26 set", uint64(p))
	}
	return nil
}
