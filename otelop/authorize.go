package otelop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// ErrPermissionDenied is matched (errors.Is) by the error of a call that an
// [Authorizer] refused. The operation's function is not called; an observed
// call's TaskRun is FAILED with error_type "permission_denied".
var ErrPermissionDenied = errors.New("permission denied")

// Authorizer decides whether a call of an operation that declares
// Permissions may run. Authorize is called before input validation and
// before the function, with the call's context, the operation's spec and
// the input's [Request] (zero when the input embeds none); a non-nil error
// refuses the call. It must be safe for concurrent use and should be fast:
// it runs on every call of such operations.
//
// Operations without Permissions are not checked, and when no Authorizer is
// installed (neither [WithAuthorizer] nor [SetAuthorizer]) every call is
// allowed.
type Authorizer interface {
	Authorize(ctx context.Context, spec Spec, req Request) error
}

// AuthorizerFunc adapts a function to [Authorizer].
type AuthorizerFunc func(ctx context.Context, spec Spec, req Request) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, spec Spec, req Request) error {
	return f(ctx, spec, req)
}

type authorizerBox struct{ a Authorizer }

var globalAuthorizer atomic.Pointer[authorizerBox]

// SetAuthorizer installs a for every operation that has no authorizer of
// its own ([WithAuthorizer]); nil removes it. It may be called at any time,
// also after operations were defined.
func SetAuthorizer(a Authorizer) {
	if a == nil {
		globalAuthorizer.Store(nil)
		return
	}
	globalAuthorizer.Store(&authorizerBox{a})
}

// WithAuthorizer installs a for this operation, in place of the one set by
// [SetAuthorizer].
func WithAuthorizer(a Authorizer) Option {
	return optionFunc(func(c *config) { c.authorizer = a })
}

// PermissionError is the error of a refused call. It matches
// [ErrPermissionDenied] and unwraps to the authorizer's error.
type PermissionError struct {
	Operation   string
	Permissions []string
	UserID      string
	Err         error
}

func (e *PermissionError) Error() string {
	who := e.UserID
	if who == "" {
		who = "an anonymous caller"
	} else {
		who = fmt.Sprintf("user %q", who)
	}
	msg := fmt.Sprintf("otelop: permission denied: %s may not run %s (needs %s)", who, e.Operation, strings.Join(e.Permissions, ", "))
	if e.Err != nil && e.Err != ErrPermissionDenied {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is [ErrPermissionDenied].
func (e *PermissionError) Is(target error) bool { return target == ErrPermissionDenied }

// Unwrap returns the authorizer's error.
func (e *PermissionError) Unwrap() error { return e.Err }

// ErrorType classifies the error for TaskRun.error_type.
func (e *PermissionError) ErrorType() string { return "permission_denied" }

// authorize runs the operation's authorizer, or the global one, for an
// operation with permissions.
func (o *Op[In, Out]) authorize(ctx context.Context, req *Request) error {
	a := o.authorizer
	if a == nil {
		b := globalAuthorizer.Load()
		if b == nil {
			return nil
		}
		a = b.a
	}
	var r Request
	if req != nil {
		r = *req
	}
	if err := a.Authorize(ctx, o.spec, r); err != nil {
		return &PermissionError{Operation: o.spec.Name, Permissions: o.spec.Permissions, UserID: r.UserID, Err: err}
	}
	return nil
}
