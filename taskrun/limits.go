package taskrun

import (
	"encoding/json"
	"fmt"

	"github.com/otelop/otelop/internal/attrs"
	"github.com/otelop/otelop/otelop"
)

// Limits applied when a span is decoded into a TaskRun, so that no run can
// make a document larger than MongoDB's 16 MiB and no write fails for size.
// What is cut is counted in metadata (log_entries_dropped,
// result_refs_dropped, error_list_dropped) or marked in the text.
const (
	MaxInputBytes      = 1 << 20               // input_dump (and output_dump); the wrapper's own limit is lower (64 KiB by default)
	MaxErrorMessage    = attrs.MaxErrorMessage // error_message, bytes
	MaxTraceback       = 64 << 10              // error_traceback, bytes
	MaxLogEntries      = 100                   // log_entries
	MaxLogMessage      = 4 << 10               // a log entry's message, bytes
	MaxLogAttributes   = 32                    // attributes of one log entry
	MaxValueBytes      = 4 << 10               // a string value in log attributes or metadata
	MaxResultRefs      = attrs.MaxResultRefs   // result_refs
	MaxItemErrors      = attrs.MaxItemErrors   // error_list
	MaxItemErrorBytes  = 1 << 10               // item and error of one error_list entry
	MaxTags            = 100                   // tags
	MaxMetadataEntries = 64                    // metadata entries from otelop.metadata.* attributes
)

// capValue caps the strings in a decoded attribute value.
func capValue(v any) any {
	switch v := v.(type) {
	case string:
		return attrs.Cap(v, MaxValueBytes)
	case []string:
		total := 0
		for i, s := range v {
			total += len(s)
			if total > MaxValueBytes {
				return append(v[:i:i], fmt.Sprintf("[%d more values cut]", len(v)-i))
			}
		}
	case []any:
		if len(v) > 256 {
			return append(v[:256:256], fmt.Sprintf("[%d more values cut]", len(v)-256))
		}
	}
	return v
}

// capJSON replaces a JSON text larger than MaxInputBytes by a marker object.
func capJSON(b json.RawMessage) json.RawMessage {
	if len(b) <= MaxInputBytes {
		return b
	}
	return json.RawMessage(fmt.Sprintf(`{"truncated":true,"size":%d}`, len(b)))
}

// applyLimits cuts what exceeds the limits. droppedEvents counts the log
// entries left out: those beyond MaxLogEntries, and the events the span
// itself dropped (the SDK's event limit).
func (run *TaskRun) applyLimits(droppedEvents int) {
	run.InputDump = capJSON(run.InputDump)
	if run.OutputDump != nil {
		run.OutputDump = capJSON(run.OutputDump)
	}
	run.ErrorMessage = attrs.Cap(run.ErrorMessage, MaxErrorMessage)
	run.ErrorTraceback = attrs.Cap(run.ErrorTraceback, MaxTraceback)
	if len(run.Tags) > MaxTags {
		run.Tags = run.Tags[:MaxTags]
	}
	if n := len(run.ResultRefs) - MaxResultRefs; n > 0 {
		run.ResultRefs = run.ResultRefs[:MaxResultRefs]
		setMeta(run, "result_refs_dropped", n)
	}
	if n := len(run.ErrorList) - MaxItemErrors; n > 0 {
		run.ErrorList = run.ErrorList[:MaxItemErrors]
		setMeta(run, "error_list_dropped", n)
	}
	for i := range run.ErrorList {
		e := &run.ErrorList[i]
		*e = otelop.ItemError{Item: attrs.Cap(e.Item, MaxItemErrorBytes), Error: attrs.Cap(e.Error, MaxItemErrorBytes)}
	}
	if droppedEvents > 0 {
		setMeta(run, "log_entries_dropped", droppedEvents)
	}
	// Log entries and metadata values are capped as they are decoded.
}
