// Package attrs names the span attributes and events that carry an
// operation call from the otelop wrapper to the TaskRun processor. The span
// is the only channel between the two, so both sides use these names.
package attrs

import (
	"strconv"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// TracerName is the instrumentation scope of operation spans.
const TracerName = "github.com/otelop/otelop/otelop"

// FlowTracerName is the instrumentation scope of built-in flow and task run
// spans, kept apart so the TaskRun processor can skip them cheaply.
const FlowTracerName = "github.com/otelop/otelop/otelop/flow"

// Attributes set when an operation span starts.
const (
	OperationName             = attribute.Key("otelop.operation.name")
	Category                  = attribute.Key("otelop.operation.category")
	Stage                     = attribute.Key("otelop.operation.stage")
	Tags                      = attribute.Key("otelop.operation.tags")
	TaskRunID                 = attribute.Key("otelop.taskrun.id")
	EnduserID                 = semconv.EnduserIDKey
	Channel                   = attribute.Key("otelop.actor.channel")
	DryRun                    = attribute.Key("otelop.dry_run")
	TestMode                  = attribute.Key("otelop.test_mode")
	Verbose                   = attribute.Key("otelop.verbose")
	IdempotencyKey            = attribute.Key("otelop.idempotency_key")
	Orchestrated              = attribute.Key("otelop.orchestrated")
	Orchestrator              = attribute.Key("otelop.orchestrator")
	OrchFlowRunID             = attribute.Key("otelop.orchestrator.flow_run_id")
	OrchTaskRunID             = attribute.Key("otelop.orchestrator.task_run_id")
	Input                     = attribute.Key("otelop.input")
	Output                    = attribute.Key("otelop.output")
	CodeFunctionName          = semconv.CodeFunctionNameKey
	LogsRef                   = attribute.Key("otelop.logs_ref")
	MetadataPrefix            = "otelop.metadata."
	MetadataAttempt           = attribute.Key("otelop.metadata.attempt")
	MetadataInputRedacted     = attribute.Key("otelop.metadata.input_redacted")
	MetadataInputTruncated    = attribute.Key("otelop.metadata.input_truncated")
	MetadataRefsDropped       = attribute.Key("otelop.metadata.result_refs_dropped")
	MetadataDeduplicatedFrom  = attribute.Key("otelop.metadata.deduplicated_from")
	MetadataItemErrorsDropped = attribute.Key("otelop.metadata.error_list_dropped")
	FlowName                  = attribute.Key("otelop.flow.name")
	FlowRunID                 = attribute.Key("otelop.flow_run.id")
	TaskName                  = attribute.Key("otelop.task.name")
	TaskRunIDOfTask           = attribute.Key("otelop.task_run.id")
	ResultRefs                = attribute.Key("otelop.result_refs")
	ErrorList                 = attribute.Key("otelop.error_list")
	ErrorType                 = semconv.ErrorTypeKey
	ExceptionType             = semconv.ExceptionTypeKey
	ExceptionMessage          = semconv.ExceptionMessageKey
	ExceptionStack            = semconv.ExceptionStacktraceKey
	LogLevel                  = attribute.Key("otelop.log.level")
	ExceptionEventName        = "exception"
)

// Limits shared by the wrapper (what it puts on a span) and the TaskRun
// decoder (what it stores).
const (
	MaxResultRefs   = 10000
	MaxItemErrors   = 1000
	MaxErrorMessage = 8 << 10
)

// Cap cuts s to at most n bytes on a rune boundary and marks the cut with
// "... [N bytes cut]"; s is returned as it is when it fits.
func Cap(s string, n int) string {
	if len(s) <= n {
		return s
	}
	suffix := "... [" + strconv.Itoa(len(s)-n) + " bytes cut]"
	keep := max(n-len(suffix), 0)
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + suffix
}
