// Package temporal tells otelop when an operation runs inside a Temporal
// activity, so that its TaskRun records orchestrator "temporal", the
// workflow run id as the flow run id, the activity id as the task run id,
// and the attempt in metadata.
//
// It is a module of its own so that otelop's core does not depend on the
// Temporal SDK. Register the detector once at start-up:
//
//	temporal.Register()
package temporal
