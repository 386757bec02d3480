package taskrun

import (
	"context"
	"time"

	"github.com/otelop/otelop/otelop"
)

// LookupIdempotent finds, through r, the newest SUCCESS run of operation
// with the idempotency key that started at or after since: the answer to a
// repeated call under otelop.WithIdempotency. Every store's
// LookupIdempotent method is this function.
func LookupIdempotent(ctx context.Context, r Reader, operation, key string, since time.Time) (otelop.PriorRun, bool, error) {
	runs, err := r.Find(ctx, Query{Operation: operation, IdempotencyKey: key, Status: string(StatusSuccess), Since: since, Limit: 1})
	if err != nil || len(runs) == 0 {
		return otelop.PriorRun{}, false, err
	}
	run := &runs[0]
	prior := otelop.PriorRun{TaskRunID: run.ID, Output: run.OutputDump, StartedAt: run.StartedAt}
	if from, ok := run.Metadata["deduplicated_from"].(string); ok && from != "" {
		prior.TaskRunID = from
	}
	return prior, true, nil
}

// IdempotencyLookup adapts a Reader to otelop.IdempotencyLookup.
func IdempotencyLookup(r Reader) otelop.IdempotencyLookup { return readerLookup{r} }

type readerLookup struct{ r Reader }

func (l readerLookup) LookupIdempotent(ctx context.Context, operation, key string, since time.Time) (otelop.PriorRun, bool, error) {
	return LookupIdempotent(ctx, l.r, operation, key, since)
}
