package memstore

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"sync"
	"time"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

// A run is stored as a record: bytes that encode every field of it,
//
//	uvarint(len(strs)) strs meta
//
// strs holds the bytes of every string of the run, one after the other;
// meta holds everything else in field order: string lengths, counts,
// numbers, times and raw JSON. Both start with the id and the fields a
// Query compares (keyed, Orchestrated, tags, result refs), so that compare
// reads the id and filter the tags and refs of a record without decoding
// it. Decoding copies strs into one string that all the run's strings are
// cut from: one allocation for the strings of a run, however many it has.
//
// The lengths of slices and maps are stored plus one, zero meaning nil, so
// nil and empty stay apart. A time is stored as Unix seconds (zigzag
// varint), nanoseconds and a zone: 0 for UTC, 1 for time.Local, 2+i for the
// location extra[i]; its monotonic clock reading is dropped. Metadata and
// log attribute values are tagged with their type (the tag constants
// below), so that they decode to the type written; a value of a type
// without a tag is kept as it is in extra, and so is a time's location
// other than UTC and Local. Records never change once built: a write of a
// run builds a new one.

// Tags of the values of metadata and log attribute maps.
const (
	tagNil byte = iota
	tagFalse
	tagTrue
	tagString
	tagInt
	tagInt64
	tagFloat64
	tagStrings
	tagBools
	tagInts
	tagInt64s
	tagFloat64s
	tagBytes
	tagRawJSON
	tagMap
	tagSlice
	tagExtra // extra[uvarint]
)

// Zones of a time; zoneExtra+i is the location extra[i].
const (
	zoneUTC = iota
	zoneLocal
	zoneExtra
)

// encoder builds records. Its buffers are reused from one run to the next.
type encoder struct {
	buf        []byte // for Write: the records of a batch
	strs, meta []byte
	extra      []any
}

// encoders holds encoders and their buffers for reuse by Write.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

// release puts e back in encoders unless its buffers grew large.
func (e *encoder) release() {
	if max(cap(e.buf), cap(e.strs), cap(e.meta)) <= maxPooledBuffer {
		e.buf = e.buf[:0]
		encoders.Put(e)
	}
}

// maxPooledBuffer bounds the buffers of the encoders kept in encoders.
const maxPooledBuffer = 1 << 20

// encode appends the record of r to dst and returns it with the values the
// record keeps in extra (nil when none). Nothing of the record or extra
// shares memory with r, except the values of extra, which are shared as they
// are.
func (ep *encoder) encode(dst []byte, r *taskrun.TaskRun) ([]byte, []any) {
	// Work on a copy on the stack: the inlined appends to its buffers then
	// need no write barriers.
	e := *ep
	defer func() {
		e.extra = nil // the caller's now
		*ep = e
	}()
	e.strs, e.meta, e.extra = e.strs[:0], e.meta[:0], nil

	// The id and the fields filter reads, in the order it reads them.
	e.str(r.ID)
	for _, v := range keyed(r) {
		e.str(v)
	}
	e.bool(r.Orchestrated)
	e.count(len(r.Tags), r.Tags == nil)
	for _, t := range r.Tags {
		e.str(t)
	}
	e.count(len(r.ResultRefs), r.ResultRefs == nil)
	for _, ref := range r.ResultRefs {
		e.str(ref.Collection)
		e.str(ref.DocumentID)
	}

	e.str(r.Category)
	e.str(r.Stage)
	e.time(r.CreatedAt)
	e.time(r.UpdatedAt)
	e.time(r.StartedAt)
	e.bool(r.FinishedAt != nil)
	if r.FinishedAt != nil {
		e.time(*r.FinishedAt)
	}
	e.float(r.DurationMS)
	e.str(r.Orchestrator)
	e.str(r.OrchestratorTaskRunID)
	e.bytes(r.InputDump)
	e.bytes(r.OutputDump)
	e.count(len(r.ErrorList), r.ErrorList == nil)
	for _, ie := range r.ErrorList {
		e.str(ie.Item)
		e.str(ie.Error)
	}
	e.str(r.ErrorMessage)
	e.str(r.ErrorType)
	e.str(r.ErrorTraceback)
	e.str(r.LogsRef)
	e.count(len(r.LogEntries), r.LogEntries == nil)
	for i := range r.LogEntries {
		le := &r.LogEntries[i]
		e.time(le.Time)
		e.str(le.Level)
		e.str(le.Message)
		e.dict(le.Attributes)
	}
	e.dict(r.Metadata)
	e.str(r.SpanID)
	e.str(r.ParentSpanID)
	e.str(r.ServiceName)

	dst = binary.AppendUvarint(dst, uint64(len(e.strs)))
	dst = append(dst, e.strs...)
	dst = append(dst, e.meta...)
	return dst, e.extra
}

func (e *encoder) str(s string) {
	e.meta = binary.AppendUvarint(e.meta, uint64(len(s)))
	e.strs = append(e.strs, s...)
}

func (e *encoder) uint(n uint64) { e.meta = binary.AppendUvarint(e.meta, n) }

func (e *encoder) count(n int, isNil bool) { e.uint(size(n, isNil)) }

// size is the stored length of a slice or map of length n.
func size(n int, isNil bool) uint64 {
	if isNil {
		return 0
	}
	return uint64(n) + 1
}

func (e *encoder) bool(b bool) {
	if b {
		e.meta = append(e.meta, 1)
	} else {
		e.meta = append(e.meta, 0)
	}
}

func (e *encoder) float(f float64) {
	e.meta = binary.LittleEndian.AppendUint64(e.meta, math.Float64bits(f))
}

func (e *encoder) bytes(b []byte) {
	e.count(len(b), b == nil)
	e.meta = append(e.meta, b...)
}

func (e *encoder) keep(v any) { e.uint(uint64(len(e.extra))); e.extra = append(e.extra, v) }

// time stores t without its monotonic clock reading.
func (e *encoder) time(t time.Time) { e.meta = appendTime(e.meta, t, &e.extra) }

// appendTime appends t to b, its location to extra when it is neither UTC
// nor Local.
func appendTime(b []byte, t time.Time, extra *[]any) []byte {
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	switch loc := t.Location(); loc {
	case time.UTC:
		return append(b, zoneUTC)
	case time.Local:
		return append(b, zoneLocal)
	default:
		*extra = append(*extra, loc)
		return binary.AppendUvarint(b, zoneExtra+uint64(len(*extra)-1))
	}
}

func (e *encoder) dict(m map[string]any) {
	e.count(len(m), m == nil)
	for k, v := range m {
		e.str(k)
		e.value(v)
	}
}

func (e *encoder) value(v any) {
	switch v := v.(type) {
	case nil:
		e.meta = append(e.meta, tagNil)
	case bool:
		if v {
			e.meta = append(e.meta, tagTrue)
		} else {
			e.meta = append(e.meta, tagFalse)
		}
	case string:
		e.meta = append(e.meta, tagString)
		e.str(v)
	case int:
		e.meta = append(e.meta, tagInt)
		e.meta = binary.AppendVarint(e.meta, int64(v))
	case int64:
		e.meta = append(e.meta, tagInt64)
		e.meta = binary.AppendVarint(e.meta, v)
	case float64:
		e.meta = append(e.meta, tagFloat64)
		e.float(v)
	case []string:
		encodeSlice(e, tagStrings, v, (*encoder).str)
	case []bool:
		encodeSlice(e, tagBools, v, (*encoder).bool)
	case []int:
		encodeSlice(e, tagInts, v, func(e *encoder, n int) { e.meta = binary.AppendVarint(e.meta, int64(n)) })
	case []int64:
		encodeSlice(e, tagInt64s, v, func(e *encoder, n int64) { e.meta = binary.AppendVarint(e.meta, n) })
	case []float64:
		encodeSlice(e, tagFloat64s, v, (*encoder).float)
	case []byte:
		e.meta = append(e.meta, tagBytes)
		e.bytes(v)
	case json.RawMessage:
		e.meta = append(e.meta, tagRawJSON)
		e.bytes(v)
	case map[string]any:
		e.meta = append(e.meta, tagMap)
		e.dict(v)
	case []any:
		e.meta = append(e.meta, tagSlice)
		e.count(len(v), v == nil)
		for _, x := range v {
			e.value(x)
		}
	default:
		e.meta = append(e.meta, tagExtra)
		e.keep(v)
	}
}

// encodeSlice encodes v as tag, its count (nil kept apart from empty) and
// its elements, each written by elem; decodeSlice reads it back.
func encodeSlice[T any](e *encoder, tag byte, v []T, elem func(*encoder, T)) {
	e.meta = append(e.meta, tag)
	e.count(len(v), v == nil)
	for _, x := range v {
		elem(e, x)
	}
}

// A decoder reads a record. Records are built by encode, so it trusts them.
type decoder struct {
	meta  []byte
	strs  string // the strings of the record; decoded strings are cut from it
	off   int    // offset in strs of the next string
	extra []any
}

func newDecoder(rec []byte, extra []any) decoder {
	n, k := uvarint(rec)
	end := k + n
	return decoder{meta: rec[end:], strs: string(rec[k:end]), extra: extra}
}

// decode returns the run of rec, made of new memory except for the values
// of extra.
func decode(rec []byte, extra []any) taskrun.TaskRun {
	d := newDecoder(rec, extra)
	var r taskrun.TaskRun
	r.ID = d.str()
	r.OperationName = d.str()
	r.Status = taskrun.Status(d.str())
	r.Actor.UserID = d.str()
	r.Actor.Channel = d.str()
	r.OrchestratorFlowRunID = d.str()
	r.TraceID = d.str()
	r.IdempotencyKey = d.str()
	r.Orchestrated = d.bool()
	if n, ok := d.count(); ok {
		r.Tags = make([]string, n)
		for i := range r.Tags {
			r.Tags[i] = d.str()
		}
	}
	if n, ok := d.count(); ok {
		r.ResultRefs = make([]otelop.Ref, n)
		for i := range r.ResultRefs {
			r.ResultRefs[i] = otelop.Ref{Collection: d.str(), DocumentID: d.str()}
		}
	}

	r.Category = d.str()
	r.Stage = d.str()
	r.CreatedAt = d.time()
	r.UpdatedAt = d.time()
	r.StartedAt = d.time()
	if d.bool() {
		f := d.time()
		r.FinishedAt = &f
	}
	r.DurationMS = d.float()
	r.Orchestrator = d.str()
	r.OrchestratorTaskRunID = d.str()
	r.InputDump = d.bytes()
	r.OutputDump = d.bytes()
	if n, ok := d.count(); ok {
		r.ErrorList = make([]otelop.ItemError, n)
		for i := range r.ErrorList {
			r.ErrorList[i] = otelop.ItemError{Item: d.str(), Error: d.str()}
		}
	}
	r.ErrorMessage = d.str()
	r.ErrorType = d.str()
	r.ErrorTraceback = d.str()
	r.LogsRef = d.str()
	if n, ok := d.count(); ok {
		r.LogEntries = make([]taskrun.LogEntry, n)
		for i := range r.LogEntries {
			le := &r.LogEntries[i]
			le.Time = d.time()
			le.Level = d.str()
			le.Message = d.str()
			le.Attributes = d.dict()
		}
	}
	r.Metadata = d.dict()
	r.SpanID = d.str()
	r.ParentSpanID = d.str()
	r.ServiceName = d.str()
	return r
}

func (d *decoder) uint() uint64 {
	n, k := uvarint(d.meta)
	d.meta = d.meta[k:]
	return uint64(n)
}

func (d *decoder) int() int64 {
	n, k := binary.Varint(d.meta)
	d.meta = d.meta[k:]
	return n
}

func (d *decoder) byte() byte {
	b := d.meta[0]
	d.meta = d.meta[1:]
	return b
}

func (d *decoder) bool() bool { return d.byte() != 0 }

func (d *decoder) float() float64 {
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.meta))
	d.meta = d.meta[8:]
	return f
}

func (d *decoder) str() string {
	n := int(d.uint())
	s := d.strs[d.off : d.off+n]
	d.off += n
	return s
}

// decodeSlice decodes a slice written as a count and its elements, each
// read by elem; a nil slice stays nil.
func decodeSlice[T any](d *decoder, elem func(*decoder) T) []T {
	n, ok := d.count()
	if !ok {
		return nil
	}
	v := make([]T, n)
	for i := range v {
		v[i] = elem(d)
	}
	return v
}

// count returns the length of a slice or map, and false when it is nil.
func (d *decoder) count() (int, bool) {
	n := d.uint()
	return int(n) - 1, n != 0
}

func (d *decoder) bytes() []byte {
	n, ok := d.count()
	if !ok {
		return nil
	}
	b := make([]byte, n)
	copy(b, d.meta)
	d.meta = d.meta[n:]
	return b
}

func (d *decoder) time() time.Time {
	sec := d.int()
	nsec := int64(d.uint())
	t := time.Unix(sec, nsec) // in time.Local
	switch zone := d.uint(); zone {
	case zoneUTC:
		return t.UTC()
	case zoneLocal:
		return t
	default:
		return t.In(d.extra[zone-zoneExtra].(*time.Location))
	}
}

func (d *decoder) dict() map[string]any {
	n, ok := d.count()
	if !ok {
		return nil
	}
	m := make(map[string]any, n)
	for range n {
		k := d.str()
		m[k] = d.value()
	}
	return m
}

func (d *decoder) value() any {
	switch d.byte() {
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagString:
		return d.str()
	case tagInt:
		return int(d.int())
	case tagInt64:
		return d.int()
	case tagFloat64:
		return d.float()
	case tagStrings:
		return decodeSlice(d, (*decoder).str)
	case tagBools:
		return decodeSlice(d, (*decoder).bool)
	case tagInts:
		return decodeSlice(d, func(d *decoder) int { return int(d.int()) })
	case tagInt64s:
		return decodeSlice(d, (*decoder).int)
	case tagFloat64s:
		return decodeSlice(d, (*decoder).float)
	case tagBytes:
		return d.bytes()
	case tagRawJSON:
		return json.RawMessage(d.bytes())
	case tagMap:
		return d.dict()
	case tagSlice:
		n, ok := d.count()
		if !ok {
			return []any(nil)
		}
		v := make([]any, n)
		for i := range v {
			v[i] = d.value()
		}
		return v
	case tagExtra:
		return d.extra[d.uint()]
	}
	return nil // tagNil
}

// recordID returns the id of the run of rec, without copying it.
func recordID(rec []byte) []byte {
	n, k := uvarint(rec)
	idLen, _ := uvarint(rec[k+n:])
	return rec[k : k+idLen]
}

// keyed returns the string fields of r that a Query compares for equality,
// in the order of [taskrun.Query] and of a record, where they follow the id.
func keyed(r *taskrun.TaskRun) [7]string {
	return [7]string{r.OperationName, string(r.Status), r.Actor.UserID, r.Actor.Channel, r.OrchestratorFlowRunID, r.TraceID, r.IdempotencyKey}
}

// filter is a Query reduced to what a run shows without decoding: the
// fingerprints of its keyed fields, Orchestrated, and the tags and refs of
// its record. It is a necessary condition only: Find decodes the runs it
// passes and checks them with [taskrun.Query.Match], which has the last word
// (and checks Since and Until, which Find's window already applies).
type filter struct {
	eq     [7]string // the wanted value of each keyed field, "" for any
	keys   [7]uint16 // their fingerprints
	last   int       // 1 + the index of the last field of eq set
	orch   *bool
	tag    string
	ref    *otelop.Ref
	passes bool // the filter lets every run through
}

func (s *Store) newFilter(q taskrun.Query) filter {
	f := filter{
		eq:   [7]string{q.Operation, q.Status, q.UserID, q.Channel, q.FlowRunID, q.TraceID, q.IdempotencyKey},
		orch: q.Orchestrated, tag: q.Tag, ref: q.Ref,
	}
	for i, v := range f.eq {
		if v != "" {
			f.keys[i] = s.fingerprint(v)
			f.last = i + 1
		}
	}
	f.passes = f.last == 0 && f.orch == nil && f.tag == "" && f.ref == nil
	return f
}

// match reports whether r, a run whose record is in a, may match the filter.
// It reads the record only for a Tag or Ref, and only when the rest matches.
func (f *filter) match(r *run, a *arena) bool {
	if f.passes {
		return true
	}
	for i := range f.last {
		if f.eq[i] != "" && r.keys[i] != f.keys[i] {
			return false
		}
	}
	if f.orch != nil && r.orchestrated != *f.orch {
		return false
	}
	if f.tag == "" && f.ref == nil {
		return true
	}

	b := a.get(r.at)
	n, k := uvarint(b)
	strs, meta := b[k:k+n], b[k+n:]
	// next returns the next string of the record.
	next := func() []byte {
		l, k := uvarint(meta)
		meta = meta[k:]
		s := strs[:l]
		strs = strs[l:]
		return s
	}
	for range 1 + len(f.eq) {
		next()
	}
	meta = meta[1:] // orchestrated
	tags, k := uvarint(meta)
	meta = meta[k:]
	found := f.tag == ""
	for range tags - 1 {
		if s := next(); !found && string(s) == f.tag {
			found = true
		}
	}
	if !found {
		return false
	}
	if f.ref == nil {
		return true
	}
	refs, k := uvarint(meta)
	meta = meta[k:]
	for range refs - 1 {
		c, d := next(), next()
		if string(c) == f.ref.Collection && string(d) == f.ref.DocumentID {
			return true
		}
	}
	return false
}

// uvarint is binary.Uvarint for the lengths and counts of a record, with a
// fast path for those below 128, the usual ones.
func uvarint(b []byte) (n, size int) {
	if b[0] < 0x80 {
		return int(b[0]), 1
	}
	u, size := binary.Uvarint(b)
	return int(u), size
}
