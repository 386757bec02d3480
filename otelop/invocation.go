package otelop

import (
	"context"
	"sync/atomic"
)

// Invocation is what an entry point (an HTTP API, a CLI, a job runner)
// knows about one call it makes on someone's behalf: who asked, through
// which channel, and metadata for the audit record. Put it in the context
// with [ContextWithInvocation] and call the operation (directly or through
// registry Metadata.Invoke).
//
// The first observed call made with that context uses it: a non-empty
// UserID or Channel replaces the ones in the input's [Request] (the function
// sees the replaced values too, so a caller cannot claim another identity in
// the input), each Metadata entry lands in TaskRun.metadata, and the wrapper
// stores the new TaskRun's id in TaskRunID. Calls that operation makes in
// turn are not affected. An operation that is not observed has no TaskRun;
// when it is called through Metadata.Invoke, UserID and Channel still
// replace the input's. An Invocation is for one call; do not share it
// between goroutines.
type Invocation struct {
	UserID   string
	Channel  string
	Metadata map[string]string

	// TaskRunID is set by the wrapper when the observed call starts.
	TaskRunID string

	used atomic.Bool
}

type invocationKey struct{}

// ContextWithInvocation returns a copy of ctx carrying inv for the next
// observed call.
func ContextWithInvocation(ctx context.Context, inv *Invocation) context.Context {
	return context.WithValue(ctx, invocationKey{}, inv)
}

// takeInvocation returns the invocation in ctx the first time it is asked
// for, nil afterwards and when there is none.
func takeInvocation(ctx context.Context) *Invocation {
	inv, ok := ctx.Value(invocationKey{}).(*Invocation)
	if !ok || inv == nil || !inv.used.CompareAndSwap(false, true) {
		return nil
	}
	return inv
}

// applyTo replaces r's user id and channel with the invocation's non-empty
// ones.
func (inv *Invocation) applyTo(r *Request) {
	if inv.UserID != "" {
		r.UserID = inv.UserID
	}
	if inv.Channel != "" {
		r.Channel = inv.Channel
	}
}
