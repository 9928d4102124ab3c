package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/pkg/host"
	"github.com/sevshim/sevshim/pkg/vmm"
	"github.com/sevshim/sevshim/pkg/vmm/libvirt" // the libvirt backend (registers "libvirt")
)

// libvirtFlags are receive's --libvirt and --name: run QEMU B as a libvirt domain.
type libvirtFlags struct {
	uri, name  string
	defineOnly bool
}

func addLibvirtFlags(c *cobra.Command) *libvirtFlags {
	f := &libvirtFlags{}
	c.Flags().StringVar(&f.uri, "libvirt", "", "run QEMU B as a libvirt domain through libvirtd at `URI` (e.g. qemu:///system; docs/hostctl.md)")
	c.Flags().StringVar(&f.name, "name", "", "with --libvirt: the domain is sevshim-`NAME` (default: the work directory's base name)")
	c.Flags().BoolVar(&f.defineOnly, "define-only", false, "with --libvirt: define the domain and place its managed-save image for libvirt's own start (an orchestrator's), instead of running it; no verdict (docs/hostctl.md)")
	return f
}

// apply selects the libvirt backend for o when --libvirt is given.
func (f *libvirtFlags) apply(o *host.ReceiveOptions, asJSON bool) error {
	if f.uri == "" {
		if f.name != "" || f.defineOnly {
			return errors.New("--name and --define-only need --libvirt URI")
		}
		return nil
	}
	if f.defineOnly && (o.WaitShell || o.Stop || o.Timeline || asJSON) {
		return errors.New("--define-only leaves the start to libvirt: no --wait shell, --stop, --timeline or --json")
	}
	if _, err := libvirt.DomainName(f.name, o.Work); err != nil {
		return err
	}
	vmm.Register(libvirt.New(libvirt.Config{URI: f.uri, Name: f.name, DefineOnly: f.defineOnly}))
	o.VMM, o.DefineOnly = libvirt.Name, f.defineOnly
	return nil
}

// printDefined says what a --define-only receive left and what starts it.
func (f *libvirtFlags) printDefined(w io.Writer, work string) {
	name, _ := libvirt.DomainName(f.name, work)
	fmt.Fprintf(w, "defined: domain %s with its managed-save image (the package passed every check)\n"+
		"start it through libvirt (virsh -c %s start %s), then wake the shim: virsh inject-nmi %s\n"+
		"the image is consumed by that start; end the guest with: hostctl stop --work %s\n", name, f.uri, name, name, work)
}
