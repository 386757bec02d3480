package taskrun

import (
	"encoding/json"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"

	"github.com/otelop/otelop/otelop"
)

// scratch is the memory the Processor decodes the runs of a batch into when
// its Writer is a [CopyingWriter], so that a batch costs a few allocations
// where each run used to cost several: the span ids and input JSON of every
// run go to one byte slice, finish times and result references to slices
// of their own, the metadata maps of the last batch's runs are emptied and
// filled again, and the operation tags, the same for every call of an
// operation, are decoded once and shared. What it hands out is never
// written again until reset, which keeps the memory for the next batch.
//
// A nil *scratch allocates every value on its own, as FromSpan does, and as
// the Processor does for any other Writer.
type scratch struct {
	reuse bool

	bytes []byte
	times []time.Time
	refSl []otelop.Ref

	tagsVal  attribute.Value // the last tags attribute decoded
	tagsList []string        // its value, shared by the runs that carry it
}

// maxKeptScratch bounds the bytes of input JSON and ids, and the result
// references, kept for reuse between batches: a batch of large inputs or
// of many references is not held on to.
const maxKeptScratch = 1 << 20

// reset makes the scratch ready for a new batch, whose values overwrite
// those handed out before.
func (sc *scratch) reset() {
	if cap(sc.bytes) > maxKeptScratch {
		sc.bytes = nil
	}
	if cap(sc.refSl) > maxKeptScratch/int(unsafe.Sizeof(otelop.Ref{})) {
		sc.refSl = nil
	}
	sc.bytes, sc.times, sc.refSl = sc.bytes[:0], sc.times[:0], sc.refSl[:0]
}

// raw returns a copy of s as raw JSON.
func (sc *scratch) raw(s string) json.RawMessage {
	if sc == nil {
		return json.RawMessage(s)
	}
	return appendView(sc, s)
}

// str returns a string of b.
func (sc *scratch) str(b []byte) string {
	if sc == nil || len(b) == 0 {
		return string(b)
	}
	v := appendView(sc, b)
	return unsafe.String(&v[0], len(v))
}

// appendView appends v to the scratch bytes and returns the copy, capped
// so that appending to it cannot write over what follows.
func appendView[T string | []byte](sc *scratch, v T) []byte {
	start := len(sc.bytes)
	sc.bytes = append(sc.bytes, v...)
	return sc.bytes[start:len(sc.bytes):len(sc.bytes)]
}

// time returns a pointer to a copy of t.
func (sc *scratch) time(t time.Time) *time.Time {
	if sc == nil {
		return &t
	}
	sc.times = append(sc.times, t)
	return &sc.times[len(sc.times)-1]
}

// refs parses the result references of a run; malformed ones are left out.
func (sc *scratch) refs(list []string) []otelop.Ref {
	var out []otelop.Ref
	start := 0
	if sc != nil {
		out, start = sc.refSl, len(sc.refSl)
	}
	for _, r := range list {
		if ref, err := otelop.ParseRef(r); err == nil {
			out = append(out, ref)
		}
	}
	if sc == nil {
		return out
	}
	sc.refSl = out
	if len(out) == start {
		return nil
	}
	return out[start:len(out):len(out)]
}

// tags decodes the tags attribute of a run.
func (sc *scratch) tags(v attribute.Value) []string {
	if sc == nil || v.Type() != attribute.STRINGSLICE {
		return stringSlice(v)
	}
	if sc.tagsList == nil || v != sc.tagsVal {
		t := v.AsStringSlice()
		sc.tagsVal, sc.tagsList = v, t[:len(t):len(t)]
	}
	return sc.tagsList
}

// resetRun zeroes run but for its Metadata map, which it empties for reuse.
func resetRun(run *TaskRun) {
	m := run.Metadata
	*run = TaskRun{}
	if m != nil {
		clear(m)
		run.Metadata = m
	}
}
