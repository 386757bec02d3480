package otelop_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

// roles grants each user a set of permissions.
func roles(grants map[string][]string) otelop.Authorizer {
	return otelop.AuthorizerFunc(func(_ context.Context, spec otelop.Spec, req otelop.Request) error {
		for _, p := range spec.Permissions {
			if !slices.Contains(grants[req.UserID], p) {
				return errors.New("missing " + p)
			}
		}
		return nil
	})
}

func TestAuthorizer(t *testing.T) {
	auth := roles(map[string][]string{"alice": {"jobs:write"}})
	for _, observed := range []bool{true, false} {
		h := taskruntest.New(t)
		calls := 0
		op := otelop.Define(otelop.Spec{Name: "guarded", Description: "d", Category: "c", Permissions: []string{"jobs:write"}, Observed: observed},
			func(_ context.Context, in createIn) (createOut, error) { calls++; return createOut{}, nil },
			append(h.Options(), otelop.WithAuthorizer(auth))...)
		for _, tc := range []struct {
			user    string
			titles  []string
			allowed bool
			errType string
		}{
			{"alice", []string{"a"}, true, ""},
			{"bob", []string{"a"}, false, "permission_denied"},
			{"", []string{"a"}, false, "permission_denied"},
			{"bob", nil, false, "permission_denied"}, // authorization comes before validation
			{"alice", nil, false, "invalid_input"},
		} {
			before := calls
			out, err := op.Call(context.Background(), createIn{Request: otelop.Request{UserID: tc.user}, Titles: tc.titles})
			ran := calls > before
			switch {
			case tc.allowed && (err != nil || !ran):
				t.Errorf("observed=%v %s: err %v, ran %v", observed, tc.user, err, ran)
			case !tc.allowed && ran:
				t.Errorf("observed=%v %s: fn ran", observed, tc.user)
			case tc.errType == "permission_denied" && !errors.Is(err, otelop.ErrPermissionDenied):
				t.Errorf("observed=%v %s: err %v, want ErrPermissionDenied", observed, tc.user, err)
			}
			if observed && tc.errType != "" {
				h.Flush()
				if r := h.Run(out.TaskRunID); r.Status != taskrun.StatusFailed || r.ErrorType != tc.errType {
					t.Errorf("%s: run %s %q (%s)", tc.user, r.Status, r.ErrorType, r.ErrorMessage)
				}
			}
		}
	}
}

func TestSetAuthorizer(t *testing.T) {
	reg := registry.New()
	guarded := otelop.Define(otelop.Spec{Name: "g", Description: "d", Category: "c", Permissions: []string{"admin"}},
		func(context.Context, createIn) (string, error) { return "ran", nil }, otelop.WithRegistry(reg))
	open := otelop.Define(otelop.Spec{Name: "o", Description: "d", Category: "c"},
		func(context.Context, createIn) (string, error) { return "ran", nil }, otelop.WithRegistry(reg))
	in := createIn{Request: otelop.Request{UserID: "bob"}, Titles: []string{"x"}}
	if _, err := guarded.Call(context.Background(), in); err != nil {
		t.Errorf("without an authorizer: %v", err)
	}
	otelop.SetAuthorizer(roles(nil))
	t.Cleanup(func() { otelop.SetAuthorizer(nil) })
	_, err := guarded.Call(context.Background(), in)
	var pe *otelop.PermissionError
	if !errors.As(err, &pe) || pe.UserID != "bob" || pe.Operation != "g" || err.Error() != `otelop: permission denied: user "bob" may not run g (needs admin): missing admin` {
		t.Errorf("with the global authorizer: %v", err)
	}
	if _, err := open.Call(context.Background(), in); err != nil {
		t.Errorf("an operation without permissions was checked: %v", err)
	}
}
