// Package exporters wires otelop into a process: it opens the TaskRun store
// named by a URI (or OTELOP_STORE) and, with Setup, builds the
// TracerProvider whose spans reach both the trace backend and the store.
package exporters
