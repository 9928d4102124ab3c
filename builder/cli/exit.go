package cli

import "errors"

// ExitRefused is the exit code of `builder inspect` when the shim would refuse the bundle (or
// its signature fails): the same code `hostctl receive` exits with on a shim refusal.
const ExitRefused = 3

// exitError is an error that carries its own exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitCode is the exit code for an error returned by a command: 1 unless it says otherwise.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
