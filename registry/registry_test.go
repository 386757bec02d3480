package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/otelop/otelop/registry"
)

func meta(name, category, stage string, tags ...string) registry.Metadata {
	return registry.Metadata{
		Spec:      registry.Spec{Name: name, Description: "does " + name, Category: category, Stage: stage, Tags: tags},
		DefinedAt: "file.go:" + name,
		Invoke:    func(context.Context, json.RawMessage) (any, error) { return name, nil },
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name    string
		spec    registry.Spec
		wantErr string
	}{
		{"ok", registry.Spec{Name: "update_job", Description: "d", Category: "c"}, ""},
		{"digits", registry.Spec{Name: "v2_sync", Description: "d", Category: "c"}, ""},
		{"empty name", registry.Spec{Description: "d", Category: "c"}, "name is required"},
		{"camel", registry.Spec{Name: "updateJob", Description: "d", Category: "c"}, "not snake_case"},
		{"dash", registry.Spec{Name: "update-job", Description: "d", Category: "c"}, "not snake_case"},
		{"double underscore", registry.Spec{Name: "update__job", Description: "d", Category: "c"}, "not snake_case"},
		{"trailing underscore", registry.Spec{Name: "update_", Description: "d", Category: "c"}, "not snake_case"},
		{"leading digit", registry.Spec{Name: "2fa_reset", Description: "d", Category: "c"}, "not snake_case"},
		{"no description", registry.Spec{Name: "x", Category: "c"}, "description is required"},
		{"no category", registry.Spec{Name: "x", Description: "d"}, "category is required"},
		{"empty tag", registry.Spec{Name: "x", Description: "d", Category: "c", Tags: []string{""}}, "tags must not be empty"},
		{"everything missing", registry.Spec{}, "name is required\ndescription is required\ncategory is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegisterRejects(t *testing.T) {
	r := registry.New()
	if err := r.Register(meta("a_op", "c", "")); err != nil {
		t.Fatal(err)
	}
	dup := meta("a_op", "c", "")
	dup.DefinedAt = "other.go:7"
	err := r.Register(dup)
	if err == nil || !strings.Contains(err.Error(), "other.go:7") || !strings.Contains(err.Error(), "file.go:a_op") {
		t.Errorf("duplicate error must name both sites: %v", err)
	}
	bad := meta("BadName", "c", "")
	if err := r.Register(bad); err == nil || !strings.Contains(err.Error(), "file.go:BadName") {
		t.Errorf("invalid spec error must name the site: %v", err)
	}
	noInvoke := meta("no_invoke", "c", "")
	noInvoke.Invoke = nil
	if err := r.Register(noInvoke); err == nil {
		t.Error("Register accepted a nil Invoke")
	}
	if got := len(r.List()); got != 1 {
		t.Errorf("List has %d entries after rejected registrations", got)
	}
}

func TestLookups(t *testing.T) {
	r := registry.New()
	for _, m := range []registry.Metadata{
		meta("zeta", "jobs", "manage", "write"),
		meta("alpha", "jobs", "ingest", "write", "batch"),
		meta("mid", "billing", "ingest", "batch"),
	} {
		if err := r.Register(m); err != nil {
			t.Fatal(err)
		}
	}
	names := func(ms []registry.Metadata) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Name)
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		name string
		got  []registry.Metadata
		want string
	}{
		{"List", r.List(), "alpha,mid,zeta"},
		{"ByCategory jobs", r.ByCategory("jobs"), "alpha,zeta"},
		{"ByCategory none", r.ByCategory("nope"), ""},
		{"ByTag batch", r.ByTag("batch"), "alpha,mid"},
		{"ByTag write", r.ByTag("write"), "alpha,zeta"},
		{"ByStage ingest", r.ByStage("ingest"), "alpha,mid"},
	}
	for _, tt := range tests {
		if got := names(tt.got); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, got, tt.want)
		}
	}
	m, ok := r.Get("mid")
	if !ok || m.Category != "billing" {
		t.Fatalf("Get(mid) = %+v, %v", m, ok)
	}
	if _, ok := r.Get("missing"); ok {
		t.Error("Get(missing) found something")
	}
	res, err := m.Invoke(context.Background(), nil)
	if err != nil || res != "mid" {
		t.Errorf("Invoke = %v, %v", res, err)
	}
	// Returned metadata does not alias the registry's copy.
	m.Tags[0] = "changed"
	if again, _ := r.Get("mid"); again.Tags[0] != "batch" {
		t.Error("Get returned an aliased Tags slice")
	}
}

func TestConcurrentRegisterAndRead(t *testing.T) {
	r := registry.New()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			_ = r.Register(meta(fmt.Sprintf("op_%d", i), "c", ""))
			_ = r.List()
			_, _ = r.Get("op_1")
		})
	}
	wg.Wait()
	if n := len(r.List()); n != 32 {
		t.Errorf("%d operations, want 32", n)
	}
}

type schemaIn struct {
	Title    string            `json:"title" jsonschema:"description=Job title"`
	Priority int               `json:"priority,omitempty" jsonschema:"minimum=0,maximum=10"`
	Labels   map[string]string `json:"labels,omitempty"`
	Callback func()            `json:"-"`
	Nested   struct {
		When string `json:"when"`
	} `json:"nested"`
}

func TestSchema(t *testing.T) {
	raw, err := registry.Schema(reflect.TypeFor[*schemaIn]())
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Type                 string                    `json:"type"`
		Properties           map[string]map[string]any `json:"properties"`
		Required             []string                  `json:"required"`
		AdditionalProperties *bool                     `json:"additionalProperties"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Type != "object" || s.Properties["title"]["description"] != "Job title" || s.Properties["priority"]["maximum"] != 10.0 {
		t.Errorf("schema = %s", raw)
	}
	if fmt.Sprint(s.Required) != "[title nested]" {
		t.Errorf("required = %v", s.Required)
	}
	if s.AdditionalProperties == nil || *s.AdditionalProperties {
		t.Errorf("additionalProperties should be false: %s", raw)
	}
	if _, err := registry.Schema(reflect.TypeFor[chan int]()); err != nil {
		t.Errorf("schema of a channel: %v", err)
	}
}
