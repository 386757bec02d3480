// Package otelop turns typed functions into registered, observable
// operations.
//
// Wrap a function once with [Define]:
//
//	var UpdateJob = otelop.Define(otelop.Spec{
//		Name:        "update_job",
//		Description: "Update a job's title",
//		Category:    "jobs",
//		Observed:    true,
//	}, updateJob)
//
// and every [Op.Call] opens one OpenTelemetry span that carries the actor
// and flags (from an embedded [Request]), the orchestration context (from
// [Flow], [Task] or a registered [Detector]), the input as JSON and, when the
// call returns, the result references and the error. The TaskRun processor in
// package taskrun turns those spans into audit documents, so the trace and
// the audit log come from one source.
//
// A spec that is not Observed (or has NoTaskRun) makes Call a plain function
// call with no span, no TaskRun and no allocations of its own.
//
// Conventions read by the wrapper:
//   - an input struct that embeds [Request] supplies user id, channel,
//     dry-run, test-mode, verbose and idempotency key;
//   - an output struct that embeds [Receipt] gets the TaskRun id;
//   - output fields of type string or []string tagged `otelop:"ref=jobs"`,
//     and a ResultRefs() []Ref method, give the result references;
//   - an ItemErrors() []ItemError method gives per-item errors of bulk
//     operations;
//   - a Validate() error method and `validate:"..."` struct tags
//     (github.com/go-playground/validator/v10) are checked before the
//     function runs; failures match [ErrInvalidInput].
//
// otelop imports only the OpenTelemetry API. Without an SDK installed the
// spans are no-ops and no TaskRun is produced.
package otelop
