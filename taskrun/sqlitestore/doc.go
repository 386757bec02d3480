// Package sqlitestore is the embedded default [taskrun.Store]: one SQLite
// file, written and read through modernc.org/sqlite (pure Go, no cgo).
//
// # The file
//
// [Open] creates the file when it is missing, switches it to WAL mode and
// creates the schema idempotently (CREATE ... IF NOT EXISTS), recording its
// version in the table taskrun_meta (key "schema_version") so that later
// releases can migrate it. PRAGMA user_version is left to the application,
// which may keep its own tables in the same file through [Store.DB].
//
// Each run is one row of the table taskruns: the full document, exactly
// json.Marshal of the [taskrun.TaskRun], in the column doc, next to indexed
// columns for every field a [taskrun.Query] selects on (operation_name,
// status, user_id, channel, flow_run_id, trace_id, idempotency_key,
// orchestrated, and started_at as integer Unix milliseconds). Tags and
// result references are mirrored into the side tables taskrun_tags and
// taskrun_refs by triggers, so "runs with this tag" and "runs that created
// this document" are index look-ups, and the side tables stay right whoever
// writes or deletes a row. Every index ends with (started_at, id), so every
// Find walks an index newest first and stops at the limit: no query sorts.
//
// Times are stored in UTC with millisecond precision, as MongoDB keeps them
// and as the TaskRun processor produces them; Write truncates finer times.
//
// # Concurrency
//
// Writes go through one connection (BEGIN IMMEDIATE, one transaction per
// batch, prepared statements), so concurrent Write calls queue in the
// process instead of failing with SQLITE_BUSY. Get and Find use a pool of
// reader connections that WAL mode lets run while a write is in progress.
// Another process writing the same file waits up to the busy timeout (see
// [WithBusyTimeout]). With synchronous=NORMAL, the WAL default used here, a
// committed write survives a crash of the process; a power loss may undo the
// last transactions (see [WithFullSync]).
package sqlitestore
