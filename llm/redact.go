package llm

import (
	"errors"
	"strings"
)

// redactor removes secret values — an API key, header values expanded
// from the environment — from text a server sent back (an error body, a
// proxy's echo of the request headers), before that text reaches an
// error, a log or a manifest. The zero value and nil redact nothing. It
// is safe for concurrent use.
type redactor struct{ r *strings.Replacer }

// minSecret is the shortest value treated as a secret: shorter ones would
// turn ordinary words into "[redacted]".
const minSecret = 4

// newRedactor returns a redactor for the non-empty secrets.
func newRedactor(secrets ...string) *redactor {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= minSecret {
			pairs = append(pairs, s, "[redacted]")
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	return &redactor{strings.NewReplacer(pairs...)}
}

// text returns s with every secret replaced.
func (r *redactor) text(s string) string {
	if r == nil {
		return s
	}
	return r.r.Replace(s)
}

// wrap returns err whose message has every secret replaced; errors.Is and
// errors.As still see the errors it wraps.
func (r *redactor) wrap(err error) error {
	if r == nil || err == nil {
		return err
	}
	return &redactedError{err: err, msg: r.text(err.Error())}
}

type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// scrub redacts a failed call's error: the body of a *StatusError in it,
// and its whole message.
func (r *redactor) scrub(err error) error {
	if r == nil || err == nil {
		return err
	}
	var se *StatusError
	if errors.As(err, &se) {
		se.Body = r.text(se.Body)
	}
	return r.wrap(err)
}
