package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spf13/cobra"
)

func TestMainExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		want string
	}{
		{nil, 0, ""},
		{errors.New("plain"), 1, "tool: plain\n"},
		{fmt.Errorf("wrapped: %w", &ExitError{Code: 3, Err: errors.New("refused")}), 3, "tool: wrapped: refused\n"},
	} {
		sub := &cobra.Command{Use: "run", RunE: func(*cobra.Command, []string) error { return tc.err }}
		var out, errb bytes.Buffer
		if code := Main(context.Background(), "tool", NewRoot("tool", "s", "l", sub), []string{"run"}, &out, &errb); code != tc.code || errb.String() != tc.want {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", tc.err, code, errb.String(), tc.code, tc.want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, map[string]string{"a": "<&>"}); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"a\": \"<&>\"\n}\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
