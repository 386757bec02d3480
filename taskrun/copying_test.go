package taskrun

import (
	"context"
	"testing"
)

type selfCopier struct{ name string }

func (*selfCopier) Write(context.Context, []TaskRun) error { return nil }
func (c *selfCopier) CopiesRuns() Writer                   { return c }

// wrapper embeds a CopyingWriter and writes on its own: it may keep runs.
type wrapper struct{ *selfCopier }

func (wrapper) Write(context.Context, []TaskRun) error { return nil }

// sliceCopier is a CopyingWriter whose type cannot be compared.
type sliceCopier []TaskRun

func (sliceCopier) Write(context.Context, []TaskRun) error { return nil }
func (c sliceCopier) CopiesRuns() Writer                   { return c }

// plain is not a CopyingWriter.
type plain struct{}

func (plain) Write(context.Context, []TaskRun) error { return nil }

func TestCopies(t *testing.T) {
	for _, tt := range []struct {
		name string
		w    Writer
		want bool
	}{
		{"copying writer", &selfCopier{}, true},
		{"embedding one with its own Write", wrapper{&selfCopier{}}, false},
		{"uncomparable", sliceCopier{}, false},
		{"plain writer", plain{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := copies(tt.w); got != tt.want {
				t.Errorf("copies = %v, want %v", got, tt.want)
			}
			if got := NewProcessor(tt.w); got.sc.reuse != tt.want {
				t.Errorf("Processor reuses memory: %v, want %v", got.sc.reuse, tt.want)
			} else if err := got.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
