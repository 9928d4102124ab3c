package host

import "context"

// InterruptedError is a command ended by SIGINT/SIGTERM (its context cancelled). Msg says
// what happened to the guest, its QEMU and the files, in plain words; hostctl prints
// "interrupted: Msg" and exits with status 130 (128 + SIGINT, as shells report it).
type InterruptedError struct {
	Msg string
	Err error // the error the cancellation caused
}

func (e *InterruptedError) Error() string { return "interrupted: " + e.Msg }
func (e *InterruptedError) Unwrap() error { return e.Err }

// interrupted turns *err into an InterruptedError with msg() when ctx was cancelled.
func interrupted(ctx context.Context, err *error, msg func() string) {
	if *err != nil && ctx.Err() != nil {
		if _, done := (*err).(*InterruptedError); !done {
			*err = &InterruptedError{Msg: msg(), Err: *err}
		}
	}
}
