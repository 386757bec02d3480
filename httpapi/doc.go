// Package httpapi serves the operation catalog and the TaskRun audit log
// over HTTP: a JSON API, an OpenAPI 3.1 document generated from the
// registry, and a web UI, all from one [http.Handler] that any service can
// mount.
//
//	h, err := httpapi.New(registry.Default, store, httpapi.WithTokensFromEnv())
//	...
//	http.ListenAndServe("127.0.0.1:8080", h)
//
// The JSON API:
//
//	GET  /api/operations                  ?category= &tag= &stage= &q=
//	GET  /api/operations/{name}           metadata and input/output JSON Schemas
//	GET  /api/operations/{name}/stats     call counts, p50/p95 duration, failure rate over time
//	POST /api/operations/{name}/invoke    body: the input as JSON
//	GET  /api/taskruns                    every taskrun.Query field as a parameter, cursor paging
//	GET  /api/taskruns/{id}
//	POST /api/taskruns/{id}/replay        re-invoke with the stored input
//	GET  /api/openapi.json
//	GET  /api/auth                        who the bearer token belongs to
//
// Errors are JSON objects {"code": "...", "message": "..."} with a stable
// code: bad_request (400), unauthorized (401), forbidden and read_only
// (403), not_found (404), not_replayable (409: the stored input was
// redacted or truncated), too_large (413), invalid_input (422),
// operation_failed and operation_panicked (500), store_unavailable (503).
//
// The web UI, rendered on the server and enhanced by a small embedded
// script (local times, live rows, charts, invoke and replay):
//
//	GET /                       TaskRuns, newest first, with filters
//	GET /runs/{id}              one TaskRun: timeline, actor, input, refs, error, logs, trace link
//	GET /operations             the catalog, searchable by name, tag and category
//	GET /operations/{name}      schemas, activity charts, invoke form
//
// Invoke and replay need a bearer token (Authorization: Bearer TOKEN) whose
// permissions include every permission of the operation's spec. The actor
// of the TaskRun is the token's user, the channel "api". Without tokens the
// handler is read-only. Tokens come from a JSON file (see [LoadTokens]),
// named by OTELOP_API_TOKENS for [WithTokensFromEnv].
package httpapi
