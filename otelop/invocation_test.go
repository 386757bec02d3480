package otelop_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

func TestInvocation(t *testing.T) {
	h := taskruntest.New(t)
	var seenUser []string
	inner := otelop.Define(otelop.Spec{Name: "inner_op", Description: "d", Category: "test", Observed: true},
		func(_ context.Context, in createIn) (createOut, error) {
			seenUser = append(seenUser, in.UserID)
			return createOut{}, nil
		}, h.Options()...)
	otelop.Define(otelop.Spec{Name: "outer_op", Description: "d", Category: "test", Observed: true},
		func(ctx context.Context, in createIn) (createOut, error) {
			seenUser = append(seenUser, in.UserID)
			out, err := inner.Call(ctx, createIn{Request: otelop.Request{UserID: "system"}, Titles: in.Titles})
			return createOut{Owner: out.TaskRunID}, err
		}, h.Options()...)
	m, _ := h.Registry.Get("outer_op")

	inv := &otelop.Invocation{UserID: "alice", Channel: "web", Metadata: map[string]string{"replay_of": "r1"}}
	ctx := otelop.ContextWithInvocation(context.Background(), inv)
	res, err := m.Invoke(ctx, json.RawMessage(`{"titles":["x"],"user_id":"mallory","channel":"cli"}`))
	if err != nil {
		t.Fatal(err)
	}
	h.Flush()
	if inv.TaskRunID == "" {
		t.Fatal("TaskRunID not filled")
	}
	outer := h.Run(inv.TaskRunID)
	if outer.Actor.UserID != "alice" || outer.Actor.Channel != "web" || outer.Metadata["replay_of"] != "r1" {
		t.Errorf("outer run actor %+v metadata %v", outer.Actor, outer.Metadata)
	}
	var input map[string]any
	if err := json.Unmarshal(outer.InputDump, &input); err != nil || input["user_id"] != "alice" {
		t.Errorf("input_dump = %s, want the invocation's user", outer.InputDump)
	}
	innerRun := h.Run(res.(createOut).Owner)
	if innerRun.Actor.UserID != "system" || innerRun.Actor.Channel != "api" || innerRun.Metadata["replay_of"] != nil {
		t.Errorf("inner run actor %+v metadata %v: the invocation must apply to the first call only", innerRun.Actor, innerRun.Metadata)
	}
	if len(seenUser) != 2 || seenUser[0] != "alice" || seenUser[1] != "system" {
		t.Errorf("functions saw users %v", seenUser)
	}
}

func TestInvocationWithoutRequest(t *testing.T) {
	h := taskruntest.New(t)
	op := otelop.Define(otelop.Spec{Name: "plain_op", Description: "d", Category: "test", Observed: true},
		func(_ context.Context, in plainIn) (plainOut, error) { return plainOut{N: in.N}, nil }, h.Options()...)
	inv := &otelop.Invocation{UserID: "bob"}
	if _, err := op.Call(otelop.ContextWithInvocation(context.Background(), inv), plainIn{N: 1}); err != nil {
		t.Fatal(err)
	}
	h.Flush()
	if r := h.Run(inv.TaskRunID); r.Actor.UserID != "bob" || r.Actor.Channel != otelop.DefaultChannel {
		t.Errorf("actor = %+v", r.Actor)
	}
}

func TestInvocationUnobservedInvoke(t *testing.T) {
	reg := registry.New()
	otelop.Define(otelop.Spec{Name: "plain_invoke", Description: "d", Category: "test"},
		func(_ context.Context, in createIn) (createOut, error) {
			return createOut{Owner: in.UserID + "/" + in.Channel}, nil
		},
		otelop.WithRegistry(reg))
	m, _ := reg.Get("plain_invoke")
	inv := &otelop.Invocation{UserID: "alice", Channel: "api"}
	res, err := m.Invoke(otelop.ContextWithInvocation(context.Background(), inv), json.RawMessage(`{"titles":["x"],"user_id":"mallory"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.(createOut).Owner; got != "alice/api" || inv.TaskRunID != "" {
		t.Errorf("the function saw %q, TaskRunID %q", got, inv.TaskRunID)
	}
}
