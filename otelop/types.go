package otelop

import (
	"errors"
	"fmt"
	"strings"

	"github.com/otelop/otelop/registry"
)

// Spec describes an operation; see [registry.Spec].
type Spec = registry.Spec

// Request carries the caller's identity and flags. Embed it in an input
// struct; the wrapper reads it at the start of every observed call.
type Request struct {
	UserID         string `json:"user_id,omitempty"`
	Channel        string `json:"channel,omitempty"` // "api" when empty
	DryRun         bool   `json:"dry_run,omitempty"`
	TestMode       bool   `json:"test_mode,omitempty"`
	Verbose        bool   `json:"verbose,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// DefaultChannel is the channel recorded when a Request leaves it empty.
const DefaultChannel = "api"

// Receipt is filled by the wrapper. Embed it in an output struct to hand the
// TaskRun id back to the caller.
type Receipt struct {
	TaskRunID string `json:"task_run_id,omitempty"`
}

// Ref points at a record an operation created or changed.
type Ref struct {
	Collection string `json:"collection" bson:"collection"`
	DocumentID string `json:"document_id" bson:"document_id"`
}

// String returns "collection/document_id".
func (r Ref) String() string { return r.Collection + "/" + r.DocumentID }

// ParseRef parses "collection/document_id". The collection may not contain a
// slash; the document id may.
func ParseRef(s string) (Ref, error) {
	c, id, ok := strings.Cut(s, "/")
	if !ok || c == "" || id == "" {
		return Ref{}, fmt.Errorf("otelop: ref %q is not of the form collection/document_id", s)
	}
	return Ref{Collection: c, DocumentID: id}, nil
}

// ItemError is the failure of one item of a bulk operation.
type ItemError struct {
	Item  string `json:"item" bson:"item"`
	Error string `json:"error" bson:"error"`
}

// ErrInvalidInput is matched (errors.Is) by every input decoding and
// validation failure. The operation's function is not called.
var ErrInvalidInput = errors.New("invalid input")

// InputError is the error returned for input that fails decoding or
// validation. It matches [ErrInvalidInput] and unwraps to the cause (for tag
// validation, validator.ValidationErrors).
type InputError struct {
	Operation string
	Err       error
	msg       string
}

func (e *InputError) Error() string {
	m := e.msg
	if m == "" && e.Err != nil {
		m = e.Err.Error()
	}
	return fmt.Sprintf("otelop: invalid input for %s: %s", e.Operation, m)
}

// Is reports whether target is [ErrInvalidInput].
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// Unwrap returns the cause.
func (e *InputError) Unwrap() error { return e.Err }
