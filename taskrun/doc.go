// Package taskrun turns operation spans into TaskRun audit documents.
//
// A [Processor] is an OpenTelemetry SpanProcessor. Registered on a
// TracerProvider, it sees every operation span the otelop wrapper starts:
// OnStart yields a RUNNING TaskRun, OnEnd the final SUCCESS or FAILED one.
// The documents are decoded from the span alone (attributes, events,
// status), batched off the caller's goroutine by one writer and written to a
// [Writer]. Stores implement [Store]: [Writer] for the processor, [Reader]
// for the CLI, the HTTP API and tests.
//
// Every store passes the conformance suite in package taskruntest.
package taskrun
