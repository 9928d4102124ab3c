package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/pkg/host"
	"github.com/sevshim/sevshim/pkg/vmm"
	"github.com/sevshim/sevshim/pkg/vmm/libvirt" // the libvirt backend (registers "libvirt")
)

// libvirtFlags are receive's --libvirt and --name: run QEMU B as a libvirt domain.
type libvirtFlags struct {
	uri, name string
}

func addLibvirtFlags(c *cobra.Command) *libvirtFlags {
	f := &libvirtFlags{}
	c.Flags().StringVar(&f.uri, "libvirt", "", "run QEMU B as a libvirt domain through libvirtd at `URI` (e.g. qemu:///system; docs/hostctl.md)")
	c.Flags().StringVar(&f.name, "name", "", "with --libvirt: the domain is sevshim-`NAME` (default: the work directory's base name)")
	return f
}

// apply selects the libvirt backend for o when --libvirt is given.
func (f *libvirtFlags) apply(o *host.ReceiveOptions) error {
	if f.uri == "" {
		if f.name != "" {
			return errors.New("--name needs --libvirt URI")
		}
		return nil
	}
	if _, err := libvirt.DomainName(f.name, o.Work); err != nil {
		return err
	}
	vmm.Register(libvirt.New(libvirt.Config{URI: f.uri, Name: f.name}))
	o.VMM = libvirt.Name
	return nil
}
