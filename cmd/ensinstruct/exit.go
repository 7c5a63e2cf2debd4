package main

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes. They are decided in one place, exitCode, from the error a
// command returns.
const (
	exitOK          = 0
	exitFailure     = 1
	exitBadInput    = 2
	exitPending     = 75 // EX_TEMPFAIL: detached while batch jobs are live (generate --detach)
	exitInterrupted = 130
)

// inputError marks an error as caused by bad usage or bad input (exit 2).
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// badInput wraps err so that it exits with code 2. A nil err stays nil.
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return &inputError{err: err}
}

// usagef returns a bad-usage error (exit 2).
func usagef(format string, args ...any) error {
	return badInput(fmt.Errorf(format, args...))
}

// silentError carries an exit code for a command that has already reported
// its problem on stderr (for example, a list of every invalid seed line).
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode maps the error a command returned to the process exit code.
// ctx is the command's context: when it was cancelled by a signal, the run
// was interrupted, whatever error the command surfaced on its way out.
func exitCode(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())) {
		return exitInterrupted
	}
	var se *silentError
	if errors.As(err, &se) {
		return se.code
	}
	var ie *inputError
	if errors.As(err, &ie) {
		return exitBadInput
	}
	return exitFailure
}
