package taskrun

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/tidwall/gjson"

	"github.com/otelop/otelop/internal/attrs"
	"github.com/otelop/otelop/otelop"
)

// IsOperationSpan reports whether s was started by the otelop wrapper for an
// observed operation call.
func IsOperationSpan(s sdktrace.ReadOnlySpan) bool {
	return s.InstrumentationScope().Name == attrs.TracerName
}

// FromSpan decodes the TaskRun of an operation span. A span that has not
// ended yields a RUNNING run; an ended one SUCCESS, or FAILED when its status
// is Error. ok is false when s is not an operation span (no
// otelop.taskrun.id). Every field comes from the span itself.
func FromSpan(s sdktrace.ReadOnlySpan) (run TaskRun, ok bool) {
	ok = decodeSpan(&run, s, nil)
	return run, ok
}

// decodeSpan is FromSpan decoding into *run, which must be the zero
// TaskRun but for an empty Metadata map to reuse: the Processor decodes
// straight into its batch, with the batch's scratch memory (nil: allocate
// everything). On false, *run is left zero but for that emptied map.
func decodeSpan(run *TaskRun, s sdktrace.ReadOnlySpan, sc *scratch) bool {
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case attrs.TaskRunID:
			run.ID = str(kv.Value)
		case attrs.OperationName:
			run.OperationName = str(kv.Value)
		case attrs.Category:
			run.Category = str(kv.Value)
		case attrs.Stage:
			run.Stage = str(kv.Value)
		case attrs.Tags:
			run.Tags = sc.tags(kv.Value)
		case attrs.IdempotencyKey:
			run.IdempotencyKey = str(kv.Value)
		case attrs.EnduserID:
			run.Actor.UserID = str(kv.Value)
		case attrs.Channel:
			run.Actor.Channel = str(kv.Value)
		case attrs.DryRun, attrs.TestMode, attrs.Verbose:
			setMeta(run, strings.TrimPrefix(string(kv.Key), "otelop."), attrValue(kv.Value))
		case attrs.Orchestrated:
			run.Orchestrated = kv.Value.Type() == attribute.BOOL && kv.Value.AsBool()
		case attrs.Orchestrator:
			run.Orchestrator = str(kv.Value)
		case attrs.OrchFlowRunID:
			run.OrchestratorFlowRunID = str(kv.Value)
		case attrs.OrchTaskRunID:
			run.OrchestratorTaskRunID = str(kv.Value)
		case attrs.Input:
			run.InputDump = inputObject(str(kv.Value), sc)
		case attrs.Output:
			run.OutputDump = jsonValue(str(kv.Value), sc)
		case attrs.ResultRefs:
			run.ResultRefs = sc.refs(stringSlice(kv.Value))
		case attrs.ErrorList:
			var list []otelop.ItemError
			if json.Unmarshal([]byte(str(kv.Value)), &list) == nil {
				run.ErrorList = list
			}
		case attrs.ErrorType:
			run.ErrorType = str(kv.Value)
		case attrs.LogsRef:
			run.LogsRef = str(kv.Value)
		default:
			if k, found := strings.CutPrefix(string(kv.Key), attrs.MetadataPrefix); found && k != "" && len(run.Metadata) < MaxMetadataEntries {
				setMeta(run, k, capValue(attrValue(kv.Value)))
			}
		}
	}
	if run.ID == "" {
		resetRun(run)
		return false
	}

	droppedLogs := s.DroppedEvents()
	for _, ev := range s.Events() {
		if ev.Name == attrs.ExceptionEventName {
			for _, kv := range ev.Attributes {
				switch kv.Key {
				case attrs.ExceptionStack:
					run.ErrorTraceback = str(kv.Value)
				case attrs.ExceptionMessage:
					if run.ErrorMessage == "" {
						run.ErrorMessage = str(kv.Value)
					}
				}
			}
			continue
		}
		level, isLog := "", false
		var attrMap map[string]any
		for _, kv := range ev.Attributes {
			if kv.Key == attrs.LogLevel {
				level, isLog = str(kv.Value), true
				continue
			}
			if attrMap == nil {
				attrMap = make(map[string]any, min(len(ev.Attributes), MaxLogAttributes))
			}
			if len(attrMap) < MaxLogAttributes {
				attrMap[string(kv.Key)] = capValue(attrValue(kv.Value))
			}
		}
		if isLog && len(run.LogEntries) >= MaxLogEntries {
			droppedLogs++
			continue
		}
		if isLog {
			run.LogEntries = append(run.LogEntries, LogEntry{
				Time: ev.Time.UTC().Truncate(time.Millisecond), Level: level, Message: attrs.Cap(ev.Name, MaxLogMessage), Attributes: attrMap,
			})
		}
	}

	run.TraceID, run.SpanID, run.ParentSpanID = spanIDs(s, sc)
	run.ServiceName = serviceName(s.Resource())

	run.StartedAt = s.StartTime().UTC().Truncate(time.Millisecond)
	run.CreatedAt = run.StartedAt
	run.UpdatedAt = run.StartedAt
	if run.Actor.Channel == "" {
		run.Actor.Channel = otelop.DefaultChannel
	}
	if run.InputDump == nil {
		run.InputDump = json.RawMessage("{}")
	}
	// Empty lists and objects, never null, as in the stored documents.
	if run.Tags == nil {
		run.Tags = []string{}
	}
	if run.ResultRefs == nil {
		run.ResultRefs = []otelop.Ref{}
	}
	if run.ErrorList == nil {
		run.ErrorList = []otelop.ItemError{}
	}
	if run.LogEntries == nil {
		run.LogEntries = []LogEntry{}
	}
	if run.Metadata == nil {
		run.Metadata = map[string]any{}
	}
	end := s.EndTime()
	if end.IsZero() {
		run.Status = StatusRunning
		run.ErrorMessage, run.ErrorType, run.ErrorTraceback = "", "", ""
		run.applyLimits(droppedLogs)
		return true
	}
	d := end.Sub(s.StartTime())
	end = end.UTC().Truncate(time.Millisecond)
	run.FinishedAt = sc.time(end)
	run.UpdatedAt = end
	run.DurationMS = float64(d.Microseconds()) / 1000
	setMeta(run, "execution_time", d.Seconds())
	if st := s.Status(); st.Code == codes.Error {
		run.Status = StatusFailed
		if st.Description != "" {
			run.ErrorMessage = st.Description
		}
		if run.ErrorType == "" {
			run.ErrorType = "error"
		}
	} else {
		run.Status = StatusSuccess
		run.ErrorMessage, run.ErrorType, run.ErrorTraceback = "", "", ""
	}
	run.applyLimits(droppedLogs)
	return true
}

// str returns v as a string: a string attribute as it is (inlined, where
// Emit is a call through a switch over every type), others formatted by
// Emit.
func str(v attribute.Value) string {
	if v.Type() == attribute.STRING {
		return v.AsString()
	}
	return v.Emit()
}

// attrValue converts an attribute value for a document: numbers that JSON
// cannot carry (NaN, ±Inf) become strings.
func attrValue(v attribute.Value) any {
	switch v.Type() {
	case attribute.FLOAT64:
		if f := v.AsFloat64(); math.IsNaN(f) || math.IsInf(f, 0) {
			return v.Emit()
		}
	case attribute.FLOAT64SLICE:
		fs := v.AsFloat64Slice()
		out := make([]any, len(fs))
		for i, f := range fs {
			out[i] = f
			if math.IsNaN(f) || math.IsInf(f, 0) {
				out[i] = fmt.Sprint(f)
			}
		}
		return out
	}
	return v.AsInterface()
}

// lastResource caches the service name of the last resource seen: a
// process has one, and every span points at it.
var lastResource atomic.Pointer[resourceName]

type resourceName struct {
	res  *resource.Resource
	name string
}

// serviceName returns the service.name of res ("" when res is nil or has
// none).
func serviceName(res *resource.Resource) string {
	if res == nil {
		return ""
	}
	if c := lastResource.Load(); c != nil && c.res == res {
		return c.name
	}
	var name string
	if v, found := res.Set().Value(semconv.ServiceNameKey); found {
		name = v.Emit()
	}
	lastResource.Store(&resourceName{res: res, name: name})
	return name
}

func setMeta(run *TaskRun, k string, v any) {
	if run.Metadata == nil {
		run.Metadata = make(map[string]any, 6)
	}
	run.Metadata[k] = v
}

func stringSlice(v attribute.Value) []string {
	if v.Type() == attribute.STRINGSLICE {
		return v.AsStringSlice()
	}
	if s := v.Emit(); s != "" {
		return []string{s}
	}
	return nil
}

// inputObject returns the input JSON as an object: valid JSON objects as
// they are, other JSON values wrapped as {"value": ...}, and anything that
// is not JSON at all as {"value": "<the text>"}.
func inputObject(s string, sc *scratch) json.RawMessage {
	t := strings.TrimSpace(s)
	if len(t) > 0 && t[0] == '{' && validJSON(t) {
		return sc.raw(t)
	}
	var v any = s
	if validJSON(t) {
		v = json.RawMessage(t)
	}
	out, _ := json.Marshal(map[string]any{"value": v})
	return out
}

// jsonValue returns s when it is JSON, else s as a JSON string.
func jsonValue(s string, sc *scratch) json.RawMessage {
	if t := strings.TrimSpace(s); validJSON(t) {
		return sc.raw(t)
	}
	b, _ := json.Marshal(s)
	return b
}

// validJSON reports whether s is one valid JSON value, as json.Valid does
// (FuzzValidJSON holds the two to the same answers), about four times
// faster and without copying s: the writer checks every recorded input.
func validJSON(s string) bool {
	// gjson has no nesting limit; encoding/json refuses more than 10,000
	// levels, which take at least 20,002 bytes.
	return s != "" && gjson.Valid(s) && (len(s) <= 2*maxNesting || nestingOK(s))
}

// maxNesting is encoding/json's limit on nested arrays and objects.
const maxNesting = 10000

// nestingOK reports whether valid JSON s nests at most maxNesting levels.
// String contents are skipped with IndexByte.
func nestingOK(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '{':
			if depth++; depth > maxNesting {
				return false
			}
		case ']', '}':
			depth--
		case '"':
			for {
				j := strings.IndexByte(s[i+1:], '"')
				if j < 0 {
					return true // not reached for valid JSON
				}
				i += j + 1
				backslashes := 0
				for k := i - 1; k >= 0 && s[k] == '\\'; k-- {
					backslashes++
				}
				if backslashes%2 == 0 {
					break
				}
			}
		}
	}
	return true
}

// spanIDs returns the trace, span and parent span ids of s in hex, all cut
// from one string.
func spanIDs(s sdktrace.ReadOnlySpan, sc *scratch) (traceID, spanID, parentID string) {
	ctx := s.SpanContext()
	t, sp, p := ctx.TraceID(), ctx.SpanID(), s.Parent().SpanID()
	var buf [64]byte
	hex.Encode(buf[:32], t[:])
	hex.Encode(buf[32:48], sp[:])
	n := 48
	if p.IsValid() {
		hex.Encode(buf[48:], p[:])
		n = 64
	}
	ids := sc.str(buf[:n])
	traceID, spanID = ids[:32], ids[32:48]
	if n == 64 {
		parentID = ids[48:]
	}
	return traceID, spanID, parentID
}
