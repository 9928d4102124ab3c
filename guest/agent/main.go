// Command agent is the guest agent, the /init of the guest's initramfs (make images builds
// it static into build/guest/initramfs.cpio): it mounts what it needs, loads the
// virtio-serial driver, and answers the host's nonces on the port agentproto.PortName with
// the TPM evidence of the PCR the shim extended (docs/formats.md section 10). Its log is the
// serial console. It is a binary for the guest, not a host tool: its logic is pkg/guest/agent.
package main

import (
	"os"
	"time"

	"github.com/sevshim/sevshim/pkg/format/agentproto"
	"github.com/sevshim/sevshim/pkg/guest/agent"
)

func main() {
	a := &agent.Agent{Log: os.Stdout}
	// a line of its own: OVMF leaves its last screen codes unterminated on the serial console
	os.Stdout.WriteString("\n" + agentproto.ConsoleReady + "\n")
	start := time.Now()
	if err := agent.Mount(); err != nil {
		a.Logf("%v", err)
		agent.PowerOff()
	}
	if b, err := os.ReadFile(agent.UptimeFile); err == nil {
		a.LogUptime(string(b)) // the host places the kernel's start from it
	}
	a.Wait = agent.WaitFromCmdline(agent.DefaultWait)
	if err := agent.LoadModules(); err != nil {
		a.Logf("%v", err)
		agent.PowerOff()
	}
	p, err := agent.OpenPort(agentproto.PortName, 10*time.Second)
	if err != nil {
		a.Logf("%v", err)
		agent.PowerOff()
	}
	if _, err := os.Stat(agent.TPMPath); err != nil {
		a.Logf("no TPM at %s: nonces will get %s", agent.TPMPath, agentproto.ErrNoTPM)
	}
	a.Logf("listening on %s (set up in %v, first nonce within %v)", agentproto.PortName, time.Since(start).Round(time.Millisecond), a.Wait)
	err = a.Serve(p)
	a.Logf("%v; powering off", err)
	agent.PowerOff()
}
