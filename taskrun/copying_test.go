package taskrun

import (
	"context"
	"testing"

	"github.com/otelop/otelop/otelop"
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

// TestScratchReset checks that reset keeps the memory of an ordinary batch
// for the next one and lets go of a batch of large inputs or many refs.
func TestScratchReset(t *testing.T) {
	for _, tt := range []struct {
		name              string
		bytes, refs       int
		keepBytes, keepRf bool
	}{
		{"ordinary batch", 64 << 10, 1024, true, true},
		{"large inputs", 2 << 20, 1024, false, true},
		{"many references", 64 << 10, 1 << 20, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := scratch{reuse: true}
			sc.raw(string(make([]byte, tt.bytes)))
			sc.refSl = make([]otelop.Ref, tt.refs)
			sc.reset()
			if kept := cap(sc.bytes) >= tt.bytes; kept != tt.keepBytes || len(sc.bytes) != 0 {
				t.Errorf("bytes: len %d cap %d, kept %v, want kept %v", len(sc.bytes), cap(sc.bytes), kept, tt.keepBytes)
			}
			if kept := cap(sc.refSl) >= tt.refs; kept != tt.keepRf || len(sc.refSl) != 0 {
				t.Errorf("refs: len %d cap %d, kept %v, want kept %v", len(sc.refSl), cap(sc.refSl), kept, tt.keepRf)
			}
		})
	}
}
