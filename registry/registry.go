package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"sync"
)

// Spec describes an operation. Name, Description and Category are required;
// Name is unique within a registry and written in snake_case.
type Spec struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Category    string   `json:"category"`
	Tags        []string `json:"tags,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	ModelsIn    []string `json:"models_in,omitempty"`
	ModelsOut   []string `json:"models_out,omitempty"`
	Stage       string   `json:"stage,omitempty"`

	// Observed makes every call open a span and produce a TaskRun. When false
	// a call is a plain function call with no overhead.
	Observed bool `json:"observed"`
	// NoTaskRun disables the observing wrapper even when Observed is set.
	NoTaskRun bool `json:"no_task_run,omitempty"`
}

// Traced reports whether calls of the operation open a span and produce a
// TaskRun: Observed and not NoTaskRun.
func (s Spec) Traced() bool { return s.Observed && !s.NoTaskRun }

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// Validate reports the first problem with the spec: a missing name,
// description or category, or a name that is not snake_case.
func (s Spec) Validate() error {
	var errs []error
	switch {
	case s.Name == "":
		errs = append(errs, errors.New("name is required"))
	case !snakeCase.MatchString(s.Name):
		errs = append(errs, fmt.Errorf("name %q is not snake_case (lower-case letters, digits and single underscores, starting with a letter)", s.Name))
	}
	if s.Description == "" {
		errs = append(errs, errors.New("description is required"))
	}
	if s.Category == "" {
		errs = append(errs, errors.New("category is required"))
	}
	for _, t := range s.Tags {
		if t == "" {
			errs = append(errs, errors.New("tags must not be empty strings"))
			break
		}
	}
	return errors.Join(errs...)
}

// Metadata is everything the registry knows about one operation.
type Metadata struct {
	Spec
	InputType    reflect.Type    `json:"-"`
	OutputType   reflect.Type    `json:"-"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	// DefinedAt is the file:line of the Define (or New) call.
	DefinedAt string `json:"defined_at,omitempty"`
	// Invoke decodes input (unknown fields rejected), validates it and calls
	// the operation. Decoding and validation failures match
	// otelop.ErrInvalidInput.
	Invoke func(ctx context.Context, input json.RawMessage) (any, error) `json:"-"`
}

// Registry is a concurrency-safe catalog of operations keyed by name.
// The zero value is not usable; use [New].
type Registry struct {
	mu  sync.RWMutex
	ops map[string]Metadata
}

// New returns an empty registry.
func New() *Registry { return &Registry{ops: make(map[string]Metadata)} }

// Default is the registry that otelop.Define uses unless told otherwise.
var Default = New()

// Register adds m. It fails when the spec is invalid, when Invoke is nil, or
// when the name is already registered; the duplicate error names both
// definition sites.
func (r *Registry) Register(m Metadata) error {
	if err := m.Spec.Validate(); err != nil {
		return fmt.Errorf("registry: invalid operation %s: %w", site(m), err)
	}
	if m.Invoke == nil {
		return fmt.Errorf("registry: operation %s has no Invoke function", site(m))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.ops[m.Name]; ok {
		return fmt.Errorf("registry: operation %q defined at %s is already defined at %s",
			m.Name, orUnknown(m.DefinedAt), orUnknown(prev.DefinedAt))
	}
	r.ops[m.Name] = m.clone()
	return nil
}

// clone copies the slices of m so that callers cannot change the registry's
// entry through them.
func (m Metadata) clone() Metadata {
	m.Tags = slices.Clone(m.Tags)
	m.Permissions = slices.Clone(m.Permissions)
	m.ModelsIn = slices.Clone(m.ModelsIn)
	m.ModelsOut = slices.Clone(m.ModelsOut)
	m.InputSchema = slices.Clone(m.InputSchema)
	m.OutputSchema = slices.Clone(m.OutputSchema)
	return m
}

// Get returns the operation registered under name.
func (r *Registry) Get(name string) (Metadata, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.ops[name]
	return m.clone(), ok
}

// List returns every operation, sorted by name.
func (r *Registry) List() []Metadata {
	return r.filter(func(Metadata) bool { return true })
}

// ByCategory returns the operations of a category, sorted by name.
func (r *Registry) ByCategory(category string) []Metadata {
	return r.filter(func(m Metadata) bool { return m.Category == category })
}

// ByTag returns the operations carrying tag, sorted by name.
func (r *Registry) ByTag(tag string) []Metadata {
	return r.filter(func(m Metadata) bool { return slices.Contains(m.Tags, tag) })
}

// ByStage returns the operations of a stage, sorted by name.
func (r *Registry) ByStage(stage string) []Metadata {
	return r.filter(func(m Metadata) bool { return m.Stage == stage })
}

func (r *Registry) filter(keep func(Metadata) bool) []Metadata {
	r.mu.RLock()
	out := make([]Metadata, 0, len(r.ops))
	for _, m := range r.ops {
		if keep(m) {
			out = append(out, m.clone())
		}
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func site(m Metadata) string {
	if m.DefinedAt == "" {
		return fmt.Sprintf("%q", m.Name)
	}
	return fmt.Sprintf("%q (defined at %s)", m.Name, m.DefinedAt)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown site"
	}
	return s
}
