package otelop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

const secret = "hunter2-s3cr3t-value"

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginIn struct {
	otelop.Request
	Creds   credentials       `json:"creds"`
	PIN     string            `json:"pin" otelop:"redact"`
	Card    *credentials      `json:"card,omitempty" otelop:"redact"`
	Headers map[string]string `json:"headers"`
	Extra   map[string]any    `json:"extra"`
	Tokens  []string          `json:"access_tokens"`
	Note    string            `json:"note"`
}

func TestRedaction(t *testing.T) {
	h := taskruntest.New(t)
	var seen loginIn
	logger := slog.New(otelop.SlogHandler(slog.DiscardHandler))
	op := otelop.Define(otelop.Spec{Name: "login", Description: "d", Category: "auth", Observed: true},
		func(ctx context.Context, in loginIn) (struct{}, error) {
			seen = in
			otelop.Log(ctx, slog.LevelInfo, "checking", "password", in.Creds.Password, "user", in.Creds.Username)
			logger.InfoContext(ctx, "via slog", "api_key", secret, slog.Group("req", slog.String("Authorization", "Bearer "+secret)))
			return struct{}{}, nil
		}, h.Options()...)
	in := loginIn{
		Request: otelop.Request{UserID: "alice", Verbose: true},
		Creds:   credentials{Username: "alice", Password: secret},
		PIN:     secret,
		Card:    &credentials{Username: "x", Password: "y" + secret},
		Headers: map[string]string{"Authorization": "Bearer " + secret, "Accept": "text/plain"},
		Extra:   map[string]any{"nested": map[string]any{"deeper": []any{map[string]any{"Stripe-Api-Key": secret}}}, "count": 3},
		Tokens:  []string{secret, secret},
		Note:    "keep me",
	}
	if _, err := op.Call(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	h.Flush()
	if seen.Creds.Password != secret || seen.PIN != secret {
		t.Error("the function did not get the real input")
	}
	spans := fmt.Sprintf("%+v", h.Spans())
	runs, err := json.Marshal(h.Runs())
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"exported spans": spans, "stored TaskRuns": string(runs)} {
		if strings.Contains(text, secret) {
			t.Errorf("the secret appears in the %s", where)
		}
		if !strings.Contains(text, "keep me") || !strings.Contains(text, "text/plain") || !strings.Contains(text, otelop.Redacted) {
			t.Errorf("the %s lost what is not secret or have no redaction mark", where)
		}
	}
	run := h.Runs()[0]
	if run.Metadata["input_redacted"] != true {
		t.Errorf("metadata = %v", run.Metadata)
	}
	var dump map[string]any
	if err := json.Unmarshal(run.InputDump, &dump); err != nil {
		t.Fatal(err)
	}
	if dump["pin"] != otelop.Redacted || dump["card"] != otelop.Redacted || dump["access_tokens"] != otelop.Redacted ||
		dump["creds"].(map[string]any)["password"] != otelop.Redacted || dump["creds"].(map[string]any)["username"] != "alice" {
		t.Errorf("input_dump = %s", run.InputDump)
	}
	if len(run.LogEntries) < 3 {
		t.Errorf("log entries: %+v", run.LogEntries)
	}
}

func TestRedactKeysConfigurable(t *testing.T) {
	t.Cleanup(func() { otelop.SetRedactKeys(otelop.DefaultRedactKeys...) })
	h := taskruntest.New(t)
	type in struct {
		PinCode  string `json:"pin_code"`
		Password string `json:"password"`
	}
	op := otelop.Define(otelop.Spec{Name: "pins", Description: "d", Category: "c", Observed: true},
		func(context.Context, in) (int, error) { return 0, nil }, h.Options()...)
	otelop.SetRedactKeys("PIN-code")
	op.Call(context.Background(), in{PinCode: "1234", Password: "visible"})
	otelop.SetRedactKeys()
	op.Call(context.Background(), in{PinCode: "5678", Password: "visible"})
	h.Flush()
	runs := h.Runs()
	if got := string(runs[1].InputDump); got != `{"pin_code":"[REDACTED]","password":"visible"}` {
		t.Errorf("with pattern PIN-code: %s", got)
	}
	if got := string(runs[0].InputDump); got != `{"pin_code":"5678","password":"visible"}` {
		t.Errorf("with no patterns: %s", got)
	}
}

func TestInputLimit(t *testing.T) {
	h := taskruntest.New(t)
	type blob struct {
		Data string `json:"data"`
	}
	op := otelop.Define(otelop.Spec{Name: "blob", Description: "d", Category: "c", Observed: true},
		func(_ context.Context, in blob) (int, error) { return len(in.Data), nil }, append(h.Options(), otelop.WithInputLimit(1024))...)
	for _, data := range []string{strings.Repeat("é", 400), strings.Repeat("é", 600), strings.Repeat(`"`, 5000)} {
		n, err := op.Call(context.Background(), blob{Data: data})
		if err != nil || n != len(data) {
			t.Fatalf("the function got %d bytes, err %v", n, err)
		}
	}
	h.Flush()
	runs := h.Runs()
	for i, r := range runs {
		var dump map[string]any
		if err := json.Unmarshal(r.InputDump, &dump); err != nil {
			t.Fatalf("input_dump %d is not an object: %v", i, err)
		}
		if len(r.InputDump) > 1024 {
			t.Errorf("input_dump %d has %d bytes", i, len(r.InputDump))
		}
		wantTruncated := i < 2 // newest first
		if (r.Metadata["input_truncated"] == true) != wantTruncated || (dump["truncated"] == true) != wantTruncated {
			t.Errorf("run %d: metadata %v, dump keys %d", i, r.Metadata, len(dump))
		}
		if wantTruncated && dump["size"].(float64) < 1024 {
			t.Errorf("run %d: size %v", i, dump["size"])
		}
	}
}
