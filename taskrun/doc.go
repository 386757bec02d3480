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
// The Processor does not lose runs quietly. While the store is out of
// service it retries with backoff and keeps merging the states that arrive,
// so its bounded queue holds about one entry per call; when the queue is
// full it blocks the calls ([Block], the default) or drops and counts
// ([Drop]). With [WithSpillFile], the runs that Shutdown cannot write are
// kept in a local file and written by the next Processor started over it.
// Its counters are in [Processor.Stats] and, as OpenTelemetry metrics, in
// the MeterProvider of [WithMeterProvider].
//
// A Writer that copies what it keeps, as the stores here do, says so by
// implementing [CopyingWriter]; the Processor then decodes each batch into
// the memory of the last one instead of allocating it anew.
//
// Every store passes the conformance suite in package taskruntest.
package taskrun
