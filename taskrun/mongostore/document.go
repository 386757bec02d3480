package mongostore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

// document is the stored form of a TaskRun: the field names of the
// TaskRun's bson tags, with input_dump, metadata and log attributes as BSON
// values (documents, not strings or binary).
type document struct {
	ID             string             `bson:"_id"`
	OperationName  string             `bson:"operation_name"`
	Category       string             `bson:"category"`
	Stage          string             `bson:"stage"`
	Tags           []string           `bson:"tags"`
	IdempotencyKey string             `bson:"idempotency_key,omitempty"`
	Actor          taskrun.Actor      `bson:"actor"`
	Status         taskrun.Status     `bson:"status"`
	CreatedAt      time.Time          `bson:"created_at"`
	UpdatedAt      time.Time          `bson:"updated_at"`
	StartedAt      time.Time          `bson:"started_at"`
	FinishedAt     *time.Time         `bson:"finished_at"`
	DurationMS     float64            `bson:"duration_ms"`
	Orchestrated   bool               `bson:"orchestrated"`
	Orchestrator   string             `bson:"orchestrator"`
	FlowRunID      string             `bson:"orchestrator_flow_run_id"`
	TaskRunID      string             `bson:"orchestrator_task_run_id"`
	InputDump      bson.RawValue      `bson:"input_dump"`
	OutputDump     *bson.RawValue     `bson:"output_dump,omitempty"`
	ResultRefs     []otelop.Ref       `bson:"result_refs"`
	ErrorList      []otelop.ItemError `bson:"error_list"`
	ErrorMessage   string             `bson:"error_message"`
	ErrorType      string             `bson:"error_type"`
	ErrorTraceback string             `bson:"error_traceback"`
	LogsRef        string             `bson:"logs_ref"`
	LogEntries     []logEntry         `bson:"log_entries"`
	Metadata       bson.RawValue      `bson:"metadata"`
	TraceID        string             `bson:"trace_id"`
	SpanID         string             `bson:"span_id"`
	ParentSpanID   string             `bson:"parent_span_id"`
	ServiceName    string             `bson:"service_name"`
}

type logEntry struct {
	Time       time.Time     `bson:"time"`
	Level      string        `bson:"level"`
	Message    string        `bson:"message"`
	Attributes bson.RawValue `bson:"attributes,omitempty"` // left out when the map is nil
}

var bsonNull = bson.RawValue{Type: bson.TypeNull}

// encodeRun returns the stored document of r.
func encodeRun(r *taskrun.TaskRun) (bson.Raw, error) {
	d := document{
		ID:             r.ID,
		OperationName:  r.OperationName,
		Category:       r.Category,
		Stage:          r.Stage,
		Tags:           r.Tags,
		IdempotencyKey: r.IdempotencyKey,
		Actor:          r.Actor,
		Status:         r.Status,
		CreatedAt:      r.CreatedAt,
		UpdatedAt:      r.UpdatedAt,
		StartedAt:      r.StartedAt,
		FinishedAt:     r.FinishedAt,
		DurationMS:     r.DurationMS,
		Orchestrated:   r.Orchestrated,
		Orchestrator:   r.Orchestrator,
		FlowRunID:      r.OrchestratorFlowRunID,
		TaskRunID:      r.OrchestratorTaskRunID,
		ResultRefs:     r.ResultRefs,
		ErrorList:      r.ErrorList,
		ErrorMessage:   r.ErrorMessage,
		ErrorType:      r.ErrorType,
		ErrorTraceback: r.ErrorTraceback,
		LogsRef:        r.LogsRef,
		TraceID:        r.TraceID,
		SpanID:         r.SpanID,
		ParentSpanID:   r.ParentSpanID,
		ServiceName:    r.ServiceName,
	}
	var err error
	if d.InputDump, err = jsonValue(r.InputDump); err != nil {
		return nil, fmt.Errorf("input_dump: %w", err)
	}
	if r.OutputDump != nil {
		v, err := jsonValue(r.OutputDump)
		if err != nil {
			return nil, fmt.Errorf("output_dump: %w", err)
		}
		d.OutputDump = &v
	}
	if d.Metadata, err = mapValue(r.Metadata); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if r.LogEntries != nil {
		d.LogEntries = make([]logEntry, len(r.LogEntries))
		for i, e := range r.LogEntries {
			d.LogEntries[i] = logEntry{Time: e.Time, Level: e.Level, Message: e.Message}
			if e.Attributes != nil {
				if d.LogEntries[i].Attributes, err = mapValue(e.Attributes); err != nil {
					return nil, fmt.Errorf("log_entries[%d].attributes: %w", i, err)
				}
			}
		}
	}
	return bson.Marshal(&d)
}

// decodeRun returns the TaskRun of a stored document.
func decodeRun(raw bson.Raw) (taskrun.TaskRun, error) {
	var d document
	if err := bson.Unmarshal(raw, &d); err != nil {
		return taskrun.TaskRun{}, err
	}
	r := taskrun.TaskRun{
		ID:                    d.ID,
		OperationName:         d.OperationName,
		Category:              d.Category,
		Stage:                 d.Stage,
		Tags:                  d.Tags,
		IdempotencyKey:        d.IdempotencyKey,
		Actor:                 d.Actor,
		Status:                d.Status,
		CreatedAt:             d.CreatedAt.UTC(),
		UpdatedAt:             d.UpdatedAt.UTC(),
		StartedAt:             d.StartedAt.UTC(),
		DurationMS:            d.DurationMS,
		Orchestrated:          d.Orchestrated,
		Orchestrator:          d.Orchestrator,
		OrchestratorFlowRunID: d.FlowRunID,
		OrchestratorTaskRunID: d.TaskRunID,
		ResultRefs:            d.ResultRefs,
		ErrorList:             d.ErrorList,
		ErrorMessage:          d.ErrorMessage,
		ErrorType:             d.ErrorType,
		ErrorTraceback:        d.ErrorTraceback,
		LogsRef:               d.LogsRef,
		TraceID:               d.TraceID,
		SpanID:                d.SpanID,
		ParentSpanID:          d.ParentSpanID,
		ServiceName:           d.ServiceName,
	}
	if d.FinishedAt != nil {
		f := d.FinishedAt.UTC()
		r.FinishedAt = &f
	}
	if !isNull(d.InputDump) {
		b, err := appendJSON(nil, d.InputDump)
		if err != nil {
			return taskrun.TaskRun{}, fmt.Errorf("input_dump: %w", err)
		}
		r.InputDump = b
	}
	if d.OutputDump != nil && d.OutputDump.Type != 0 {
		b, err := appendJSON(nil, *d.OutputDump)
		if err != nil {
			return taskrun.TaskRun{}, fmt.Errorf("output_dump: %w", err)
		}
		r.OutputDump = b
	}
	r.Metadata = plainMap(d.Metadata)
	if d.LogEntries != nil {
		r.LogEntries = make([]taskrun.LogEntry, len(d.LogEntries))
		for i, e := range d.LogEntries {
			r.LogEntries[i] = taskrun.LogEntry{Time: e.Time.UTC(), Level: e.Level, Message: e.Message, Attributes: plainMap(e.Attributes)}
		}
	}
	return r, nil
}

func isNull(v bson.RawValue) bool {
	return v.Type == 0 || v.Type == bson.TypeNull || v.Type == bson.TypeUndefined
}

// ---------------------------------------------------------------------------
// JSON and Go values to BSON

// jsonValue converts JSON text to a BSON value: objects to documents (keys
// in their order), arrays to arrays, integers to int32 or int64, other
// numbers to doubles. Empty input and null are BSON null. Keys are taken as
// they are: "$date" and other Extended JSON keys keep their meaning as plain
// keys.
func jsonValue(raw []byte) (bson.RawValue, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return bsonNull, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeJSON(dec, 0)
	if err != nil {
		return bson.RawValue{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bson.RawValue{}, errors.New("invalid JSON: data after the top-level value")
	}
	return marshalValue(v)
}

// maxDepth is the deepest nesting jsonValue and toBSON accept, below the
// 100 levels a MongoDB document may have.
const maxDepth = 90

func decodeJSON(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := bson.D{}
			var seen map[string]int
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				v, err := decodeJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				if seen == nil {
					seen = make(map[string]int)
				}
				if i, dup := seen[k]; dup { // the last value wins, as in encoding/json
					d[i].Value = v
					continue
				}
				seen[k] = len(d)
				d = append(d, bson.E{Key: escapeKey(k), Value: v})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return d, nil
		case '[':
			a := bson.A{}
			for dec.More() {
				v, err := decodeJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return a, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return jsonNumber(t), nil
	default: // string, bool, nil
		return t, nil
	}
}

func jsonNumber(n json.Number) any {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			return int32(i)
		}
		return i
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil { // out of the float64 range: keep the text
		return string(n)
	}
	return f
}

// mapValue converts a metadata or attribute map to a BSON document with its
// keys sorted; nil is BSON null.
func mapValue(m map[string]any) (bson.RawValue, error) {
	if m == nil {
		return bsonNull, nil
	}
	v, err := toBSON(m, 0)
	if err != nil {
		return bson.RawValue{}, err
	}
	return marshalValue(v)
}

// toBSON prepares a Go value for the BSON encoder: maps become documents
// with sorted keys, JSON text becomes the value it denotes, numbers that
// JSON cannot hold (NaN, ±Inf) become strings, as the processor stores them.
// Other values are left to the encoder.
func toBSON(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return nil, nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := make(bson.D, 0, len(v))
		for _, k := range keys {
			e, err := toBSON(v[k], depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			d = append(d, bson.E{Key: escapeKey(k), Value: e})
		}
		return d, nil
	case []any:
		if v == nil {
			return nil, nil
		}
		a := make(bson.A, len(v))
		for i, e := range v {
			c, err := toBSON(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			a[i] = c
		}
		return a, nil
	case json.RawMessage:
		rv, err := jsonValue(v)
		if err != nil {
			return nil, err
		}
		return rv, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprint(v), nil
		}
	case float32:
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(v), nil
		}
	case []float64:
		if slices.ContainsFunc(v, func(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }) {
			a := make(bson.A, len(v))
			for i, f := range v {
				a[i], _ = toBSON(f, depth+1)
			}
			return a, nil
		}
	case uint, uint32, uint64, uintptr:
		// The encoder refuses unsigned numbers above MaxInt64 by default;
		// keep them exact as text rather than fail the whole batch.
		u, _ := strconv.ParseUint(fmt.Sprint(v), 10, 64)
		if u > math.MaxInt64 {
			return strconv.FormatUint(u, 10), nil
		}
		return int64(u), nil
	}
	return v, nil
}

func marshalValue(v any) (bson.RawValue, error) {
	switch v := v.(type) {
	case nil:
		return bsonNull, nil
	case bson.RawValue:
		return v, nil
	}
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		return bson.RawValue{}, err
	}
	return bson.RawValue{Type: t, Value: data}, nil
}

// ---------------------------------------------------------------------------
// BSON to plain Go values and JSON

// plainMap returns a stored document as a map of plain Go values (see
// plainValue); BSON null, a missing field or a non-document is nil.
func plainMap(v bson.RawValue) map[string]any {
	doc, ok := v.DocumentOK()
	if !ok {
		return nil
	}
	m, _ := plainValue(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}).(map[string]any)
	return m
}

// plainValue converts a BSON value to the Go value encoding/json would give
// for its JSON: map[string]any, []any, string, float64, bool and nil, with
// int64 for BSON integers and time.Time for dates. ObjectIDs become their
// hex text, decimals their text, binary data []byte.
func plainValue(v bson.RawValue) any {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return nil
		}
		m := make(map[string]any, len(elems))
		for _, e := range elems {
			m[unescapeKey(e.Key())] = plainValue(e.Value())
		}
		return m
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return nil
		}
		a := make([]any, len(vals))
		for i, e := range vals {
			a[i] = plainValue(e)
		}
		return a
	case bson.TypeString:
		return v.StringValue()
	case bson.TypeDouble:
		return v.Double()
	case bson.TypeInt32:
		return int64(v.Int32())
	case bson.TypeInt64:
		return v.Int64()
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeNull, bson.TypeUndefined:
		return nil
	case bson.TypeDateTime:
		return v.Time().UTC()
	case bson.TypeObjectID:
		return v.ObjectID().Hex()
	case bson.TypeDecimal128:
		return v.Decimal128().String()
	case bson.TypeBinary:
		_, data := v.Binary()
		return data
	case bson.TypeSymbol:
		return v.Symbol()
	case bson.TypeJavaScript:
		return v.JavaScript()
	}
	return v.String() // timestamps, regular expressions and the like: their Extended JSON
}

// appendJSON appends the JSON of a BSON value to buf, keeping the order of
// document keys.
func appendJSON(buf []byte, v bson.RawValue) ([]byte, error) {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return nil, err
		}
		buf = append(buf, '{')
		for i, e := range elems {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendMarshal(buf, unescapeKey(e.Key())); err != nil {
				return nil, err
			}
			buf = append(buf, ':')
			if buf, err = appendJSON(buf, e.Value()); err != nil {
				return nil, err
			}
		}
		return append(buf, '}'), nil
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return nil, err
		}
		buf = append(buf, '[')
		for i, e := range vals {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendJSON(buf, e); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	case bson.TypeInt32:
		return strconv.AppendInt(buf, int64(v.Int32()), 10), nil
	case bson.TypeInt64:
		return strconv.AppendInt(buf, v.Int64(), 10), nil
	case bson.TypeBoolean:
		return strconv.AppendBool(buf, v.Boolean()), nil
	case bson.TypeNull, bson.TypeUndefined:
		return append(buf, "null"...), nil
	case bson.TypeDouble:
		if f := v.Double(); math.IsNaN(f) || math.IsInf(f, 0) {
			return appendMarshal(buf, fmt.Sprint(f))
		}
	}
	return appendMarshal(buf, plainValue(v))
}

func appendMarshal(buf []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(buf, b...), nil
}

// escapeKey makes a key of user data (input_dump, metadata, log entry
// attributes) storable on every MongoDB-compatible server: "%" becomes
// "%25", "." becomes "%2E", a leading "$" becomes "%24", and NUL becomes
// "%00". Keys such as slog's "req.id" would otherwise be refused by servers
// that reject dotted or $-prefixed field names, failing the whole write.
// unescapeKey reverses it on read.
func escapeKey(k string) string {
	if !strings.ContainsAny(k, "%.\x00") && !strings.HasPrefix(k, "$") {
		return k
	}
	var b strings.Builder
	b.Grow(len(k) + 4)
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c == '%':
			b.WriteString("%25")
		case c == '.':
			b.WriteString("%2E")
		case c == 0:
			b.WriteString("%00")
		case c == '$' && i == 0:
			b.WriteString("%24")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescapeKey(k string) string {
	if !strings.Contains(k, "%") {
		return k
	}
	var b strings.Builder
	b.Grow(len(k))
	for i := 0; i < len(k); i++ {
		if k[i] == '%' && i+2 < len(k) {
			switch k[i+1 : i+3] {
			case "25":
				b.WriteByte('%')
				i += 2
				continue
			case "2E":
				b.WriteByte('.')
				i += 2
				continue
			case "24":
				b.WriteByte('$')
				i += 2
				continue
			case "00":
				b.WriteByte(0)
				i += 2
				continue
			}
		}
		b.WriteByte(k[i])
	}
	return b.String()
}
