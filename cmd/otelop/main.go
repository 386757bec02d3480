// Command otelop queries and serves the TaskRun audit log.
//
//	otelop runs list --op bulk_delete_jobs --status failed --since 24h
//	otelop runs show 01J9Z3...
//	otelop runs tail --user alice
//	otelop serve --addr 127.0.0.1:8080          # web UI and HTTP API
//
// The store comes from --store or OTELOP_STORE (default sqlite:otelop.db):
// mongodb://host/db, mongodb+srv://..., sqlite:PATH or memory:. Query
// commands never write to the store. Bad input (an unknown status, an
// unparsable time, a malformed ref, an unreachable store) prints one line and
// exits with status 2.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // the command ran and failed (for example: no such run)
	exitBadInput = 2 // bad flags or arguments, or the store could not be opened
)

// usageError marks bad input: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "otelop:", oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitBadInput
	}
	return exitFailure
}

func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
