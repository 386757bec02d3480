package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// schemaVersion is the version of the schema this package creates and
// reads, kept in taskrun_meta under the key "schema_version". A file with a
// higher version was written by a newer release: Open refuses it.
const schemaVersion = 1

// schema creates the tables, indexes and triggers of schemaVersion. Every
// statement is idempotent.
//
// Every index of taskruns ends with (started_at, id) so that a Find with an
// equality filter walks it newest first and stops at the limit. The indexes
// on flow_run_id and idempotency_key are partial: most runs leave those
// empty, and Find adds the matching "<> ”" term when it filters on them.
//
// taskrun_tags and taskrun_refs mirror the tags and refs columns (compact
// JSON arrays), with started_at copied so that they are ordered like the
// runs: their primary keys are the indexes of Find by tag and by ref. Write
// maintains them in bulk; a trigger removes the rows of a deleted run.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS taskrun_meta (
	key   TEXT PRIMARY KEY NOT NULL,
	value ANY
) STRICT`,
	`CREATE TABLE IF NOT EXISTS taskruns (
	id              TEXT PRIMARY KEY NOT NULL,
	operation_name  TEXT NOT NULL,
	status          TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	channel         TEXT NOT NULL,
	flow_run_id     TEXT NOT NULL,
	trace_id        TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	orchestrated    INTEGER NOT NULL,
	started_at      INTEGER NOT NULL, -- Unix milliseconds, UTC
	tags            TEXT NOT NULL,    -- JSON array of strings
	refs            TEXT NOT NULL,    -- JSON array of [collection, document_id]
	doc             TEXT NOT NULL     -- json.Marshal of the taskrun.TaskRun
) STRICT`,
	`CREATE INDEX IF NOT EXISTS taskruns_started ON taskruns (started_at, id)`,
	`CREATE INDEX IF NOT EXISTS taskruns_operation ON taskruns (operation_name, started_at, id)`,
	`CREATE INDEX IF NOT EXISTS taskruns_operation_status ON taskruns (operation_name, status, started_at, id)`,
	`CREATE INDEX IF NOT EXISTS taskruns_status ON taskruns (status, started_at, id)`,
	`CREATE INDEX IF NOT EXISTS taskruns_user ON taskruns (user_id, started_at, id)`,
	`CREATE INDEX IF NOT EXISTS taskruns_channel ON taskruns (channel, started_at, id)`,
	`CREATE INDEX IF NOT EXISTS taskruns_flow_run ON taskruns (flow_run_id, started_at, id) WHERE flow_run_id <> ''`,
	`CREATE INDEX IF NOT EXISTS taskruns_trace ON taskruns (trace_id, started_at, id)`,
	`CREATE INDEX IF NOT EXISTS taskruns_idempotency_key ON taskruns (idempotency_key, started_at, id) WHERE idempotency_key <> ''`,
	`CREATE INDEX IF NOT EXISTS taskruns_orchestrated ON taskruns (orchestrated, started_at, id)`,

	`CREATE TABLE IF NOT EXISTS taskrun_tags (
	tag        TEXT NOT NULL,
	started_at INTEGER NOT NULL,
	run_id     TEXT NOT NULL,
	PRIMARY KEY (tag, started_at, run_id)
) STRICT, WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS taskrun_refs (
	document_id TEXT NOT NULL,
	collection  TEXT NOT NULL,
	started_at  INTEGER NOT NULL,
	run_id      TEXT NOT NULL,
	PRIMARY KEY (document_id, collection, started_at, run_id)
) STRICT, WITHOUT ROWID`,
	`CREATE TRIGGER IF NOT EXISTS taskruns_delete AFTER DELETE ON taskruns BEGIN
	DELETE FROM taskrun_tags
		WHERE tag IN (SELECT value FROM json_each(OLD.tags)) AND started_at = OLD.started_at AND run_id = OLD.id;
	DELETE FROM taskrun_refs
		WHERE (document_id, collection) IN (SELECT value ->> 1, value ->> 0 FROM json_each(OLD.refs))
		AND started_at = OLD.started_at AND run_id = OLD.id;
END`,
}

// migrate creates or checks the schema inside one write transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see the writer DSN)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op

	v, err := readVersion(ctx, tx)
	if err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("the file has TaskRun schema version %d, newer than version %d that this release knows: open it with a newer otelop", v, schemaVersion)
	}
	if v == 0 {
		// No TaskRun schema yet. The file may still hold other tables (an
		// application's), which are left alone.
		for _, stmt := range schema {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("creating the schema: %w (in %s)", err, firstLine(stmt))
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO taskrun_meta (key, value) VALUES ('schema_version', ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`, schemaVersion); err != nil {
			return fmt.Errorf("recording the schema version: %w", err)
		}
	}
	// Later versions migrate here: if v < 2 { ... }.
	return tx.Commit()
}

// checkSchema verifies, without writing, that db holds a TaskRun schema this
// release can read.
func checkSchema(ctx context.Context, db *sql.DB) error {
	v, err := readVersion(ctx, db)
	if err != nil {
		return err
	}
	switch {
	case v == 0:
		return errors.New("the file holds no TaskRun store (no taskrun_meta schema_version): open it once for writing to create one")
	case v > schemaVersion:
		return fmt.Errorf("the file has TaskRun schema version %d, newer than version %d that this release knows: open it with a newer otelop", v, schemaVersion)
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readVersion returns the schema version of the file, 0 when it holds no
// TaskRun schema.
func readVersion(ctx context.Context, q querier) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'taskrun_meta'`).Scan(&n)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	err = q.QueryRowContext(ctx, `SELECT value FROM taskrun_meta WHERE key = 'schema_version'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return v, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
