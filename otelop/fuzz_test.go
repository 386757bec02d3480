package otelop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

type fuzzItem struct {
	Name  string            `json:"name" validate:"required,max=50"`
	Count int               `json:"count" validate:"gte=0"`
	Tags  map[string]string `json:"tags,omitempty"`
}

type fuzzIn struct {
	otelop.Request
	Items    []fuzzItem `json:"items" validate:"required,min=1,dive"`
	Password string     `json:"password,omitempty"`
	Ratio    *float64   `json:"ratio,omitempty"`
	Raw      any        `json:"raw,omitempty"`
}

// FuzzInvoke feeds arbitrary bytes to Metadata.Invoke of an observed
// operation: every outcome is a result or an error matching
// ErrInvalidInput, never a panic, and the function runs exactly when the
// input decodes and validates.
func FuzzInvoke(f *testing.F) {
	for _, s := range []string{
		`{"items":[{"name":"a","count":1}]}`,
		`{"items":[{"name":"a","count":1,"tags":{"k":"v"}}],"user_id":"u","dry_run":true,"password":"pw-123456"}`,
		`{"items":[]}`, `{"items":[{"name":""}]}`, `{"items":[{"name":"a","count":-1}]}`,
		`{"items":[{"name":"a"}],"extra":1}`, `{"items":[{"name":"a"}]} {}`, `[`, ``, `null`, `"x"`,
		`{"items":[{"name":"a"}],"ratio":1e400}`, `{"items":[{"name":"a"}],"raw":{"api_key":"pw-123456","n":[1,{"token":"pw-123456"}]}}`,
		"{\"items\":[{\"name\":\"\xff\"}]}",
	} {
		f.Add([]byte(s))
	}
	h := taskruntest.New(f)
	ran := 0
	otelop.Define(otelop.Spec{Name: "fuzzed", Description: "d", Category: "fuzz", Observed: true},
		func(_ context.Context, in fuzzIn) (int, error) { ran++; return len(in.Items), nil }, h.Options()...)
	m, _ := h.Registry.Get("fuzzed")
	f.Fuzz(func(t *testing.T, data []byte) {
		before := ran
		res, err := m.Invoke(context.Background(), json.RawMessage(data))
		if err != nil && !errors.Is(err, otelop.ErrInvalidInput) {
			t.Fatalf("Invoke(%q): error %v does not match ErrInvalidInput", data, err)
		}
		if err == nil {
			if n, ok := res.(int); !ok || n < 1 || ran != before+1 {
				t.Fatalf("Invoke(%q) = %v, ran %d", data, res, ran-before)
			}
		}
	})
}

// FuzzRegistryInvokeUnknownFields checks that Invoke never accepts a field
// the input type does not have.
func FuzzRegistryInvokeUnknownFields(f *testing.F) {
	f.Add("extra")
	f.Add("items2")
	f.Add("Items")
	reg := registry.New()
	otelop.Define(otelop.Spec{Name: "strict", Description: "d", Category: "fuzz"},
		func(_ context.Context, in fuzzIn) (int, error) { return len(in.Items), nil }, otelop.WithRegistry(reg))
	m, _ := reg.Get("strict")
	known := map[string]bool{"user_id": true, "channel": true, "dry_run": true, "test_mode": true, "verbose": true,
		"idempotency_key": true, "items": true, "password": true, "ratio": true, "raw": true}
	f.Fuzz(func(t *testing.T, field string) {
		body, _ := json.Marshal(map[string]any{"items": []any{map[string]any{"name": "a"}}, field: 1})
		_, err := m.Invoke(context.Background(), body)
		// encoding/json matches field names case-insensitively.
		if err == nil && !known[field] && !knownFold(known, field) {
			t.Fatalf("Invoke accepted the unknown field %q", field)
		}
	})
}

func knownFold(known map[string]bool, field string) bool {
	for k := range known {
		if strings.EqualFold(k, field) {
			return true
		}
	}
	return false
}

// FuzzRedact builds inputs with a secret under a key containing one of the
// default patterns, nested in maps and lists: the secret never reaches the
// span.
func FuzzRedact(f *testing.F) {
	f.Add("", "password", "", "hunter2-hunter2", uint8(0))
	f.Add("X-", "api_key", "s", "sk_live_1234567890", uint8(3))
	f.Add("refresh", "token", "", "eyJhbGciOiJIUzI1NiJ9", uint8(7))
	f.Add("", "Authorization", "", "Bearer abcdefghijkl", uint8(2))
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	f.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	op := otelop.Define(otelop.Spec{Name: "redact_fuzz", Description: "d", Category: "fuzz", Observed: true},
		func(ctx context.Context, in map[string]any) (int, error) {
			otelop.Log(ctx, slog.LevelInfo, "seen", "password", in["password"])
			return len(in), nil
		}, otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
	// What a span holds without any secret: a fuzzed "secret" found in it
	// (an attribute name, say) proves nothing.
	if _, err := op.Call(context.Background(), map[string]any{"outer": map[string]any{"level": []any{1, map[string]any{"keep": "visible"}}}}); err != nil {
		f.Fatal(err)
	}
	baseline := fmt.Sprintf("%+v%+v", exp.GetSpans()[0].Attributes, exp.GetSpans()[0].Events)
	f.Fuzz(func(t *testing.T, prefix, pattern, suffix, secret string, depth uint8) {
		ok := false
		for _, p := range otelop.DefaultRedactKeys {
			ok = ok || strings.EqualFold(strings.ReplaceAll(pattern, "-", "_"), p)
		}
		if !ok || len(secret) < 8 || !utf8.ValidString(secret+prefix+suffix) || strings.Contains(baseline+"[REDACTED]", secret) {
			return
		}
		key := prefix + pattern + suffix
		if strings.Contains(key, secret) || strings.Contains(strconv.Quote(key), secret) {
			return // the key itself is not secret
		}
		var v any = map[string]any{key: secret, "keep": "visible"}
		for i := range int(depth % 8) {
			if i%2 == 0 {
				v = []any{1, v}
			} else {
				v = map[string]any{"level": v}
			}
		}
		exp.Reset()
		if _, err := op.Call(context.Background(), map[string]any{"outer": v, "password": secret}); err != nil {
			t.Fatal(err)
		}
		spans := exp.GetSpans()
		if len(spans) != 1 {
			t.Fatalf("%d spans", len(spans))
		}
		text := fmt.Sprintf("%+v", spans[0].Attributes) + fmt.Sprintf("%+v", spans[0].Events)
		if strings.Contains(text, secret) || strings.Contains(text, strings.Trim(strconv.Quote(secret), `"`)) {
			t.Fatalf("secret %q under key %q leaked: %s", secret, key, text)
		}
	})
}
