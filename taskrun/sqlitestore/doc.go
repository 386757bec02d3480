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
// taskrun_refs, keyed (tag, started_at, run_id) and (document_id,
// collection, started_at, run_id), so "runs with this tag" and "runs that
// created this document" are index walks too. Write keeps them in sync, in
// bulk and only for the runs it really wrote; a trigger removes the rows of
// a run that the application deletes (for retention, say). Every index
// ends with (started_at, id), so every Find walks one index newest first
// and stops at the limit: no query sorts or scans the table.
//
// Times are stored in UTC with millisecond precision, as MongoDB keeps them
// and as the TaskRun processor produces them; Write truncates finer times.
//
// # Performance
//
// Find costs about the decoding of the documents it returns (json.Unmarshal,
// spread over GOMAXPROCS goroutines): 2.5-4ms for 50 runs of about 3 KB out
// of 100,000 on two cores. A write costs about one B-tree insert per index
// and per tag and ref (around 30 for a run with ten tags and ten refs), and
// one WAL page per page it changes (the trace index, whose keys are random,
// changes about one page per run); runs are JSON-encoded on a second
// goroutine meanwhile. Batches of a few hundred runs amortise the commit
// and the statements: runs not stored yet are inserted up to 128 to a
// statement, and so are the rows of the side tables.
//
// # Concurrency
//
// Writes go through one connection (BEGIN IMMEDIATE, one transaction per
// batch, prepared statements), so concurrent Write calls queue in the
// process instead of failing with SQLITE_BUSY. Get and Find use a pool of
// reader connections that WAL mode lets run while a write is in progress.
// A goroutine with its own connection checkpoints the WAL in the
// background (PASSIVE, at most every 100ms while writes come), so commits
// do not pay for it. Another process writing the same file waits up to the busy timeout (see
// [WithBusyTimeout]). With synchronous=NORMAL, the WAL default used here, a
// committed write survives a crash of the process; a power loss may undo the
// last transactions (see [WithFullSync]).
package sqlitestore
