package sqlitestore

import (
	"context"
	"database/sql"

	"github.com/otelop/otelop/taskrun"
)

// ExplainFind returns the EXPLAIN QUERY PLAN lines of the statement Find
// runs for q, one per plan node, indented by depth.
func ExplainFind(ctx context.Context, s *Store, q taskrun.Query) ([]string, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	query, args, err := s.findSQL(ctx, q)
	if err != nil {
		return nil, err
	}
	return explain(ctx, s.r, query, args...)
}

func explain(ctx context.Context, db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	depth := map[int]int{0: -1}
	var out []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return nil, err
		}
		d := depth[parent] + 1
		depth[id] = d
		line := detail
		for range d {
			line = "  " + line
		}
		out = append(out, line)
	}
	return out, rows.Err()
}

// FindSQL returns the statement and arguments Find runs for q (normalised)
// without a cursor.
func FindSQL(q taskrun.Query) (string, []any) { return buildFind(q, nil) }
