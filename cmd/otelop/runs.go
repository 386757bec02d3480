package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

func newRunsCmd(root *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List, show and follow TaskRuns",
	}
	cmd.AddCommand(newListCmd(root), newShowCmd(root), newTailCmd(root))
	return cmd
}

// queryFlags are the flags shared by list and tail: one per Query field.
type queryFlags struct {
	op, status, user, channel, flowRun, trace, tag, ref, idem string
	orchestrated, since, until, before                        string
	limit                                                     int
	jsonOut                                                   bool
}

func (f *queryFlags) register(cmd *cobra.Command, limitDefault int, withCursor bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.op, "op", "", "operation name")
	fl.StringVar(&f.status, "status", "", "PENDING, RUNNING, SUCCESS or FAILED (any case)")
	fl.StringVar(&f.user, "user", "", "actor user id")
	fl.StringVar(&f.channel, "channel", "", "actor channel (api, web, cli, ...)")
	fl.StringVar(&f.flowRun, "flow-run", "", "orchestrator flow run id")
	fl.StringVar(&f.trace, "trace", "", "trace id")
	fl.StringVar(&f.tag, "tag", "", "operation tag")
	fl.StringVar(&f.ref, "ref", "", "a result reference, COLLECTION/ID")
	fl.StringVar(&f.idem, "idempotency-key", "", "idempotency key")
	fl.StringVar(&f.orchestrated, "orchestrated", "", "true or false: only runs inside (or outside) a workflow")
	fl.StringVar(&f.since, "since", "", "runs started at or after: RFC 3339, a date (2006-01-02) or an age (90s, 15m, 2h, 7d)")
	fl.StringVar(&f.until, "until", "", "runs started before: same forms as --since")
	fl.IntVar(&f.limit, "limit", limitDefault, fmt.Sprintf("at most this many runs (1 to %d)", taskrun.MaxLimit))
	if withCursor {
		fl.StringVar(&f.before, "before", "", "cursor: the id of the last run of the previous page")
	}
	fl.BoolVar(&f.jsonOut, "json", false, "one JSON document per line")
}

// query turns the flags into a validated Query.
func (f *queryFlags) query(now time.Time) (taskrun.Query, error) {
	q := taskrun.Query{
		Operation: f.op, UserID: f.user, Channel: f.channel, FlowRunID: f.flowRun,
		TraceID: f.trace, IdempotencyKey: f.idem, Tag: f.tag, Limit: f.limit, Before: f.before,
	}
	if f.status != "" {
		st, err := taskrun.ParseStatus(f.status)
		if err != nil {
			return q, badInput("--status: unknown status %q (want PENDING, RUNNING, SUCCESS or FAILED)", f.status)
		}
		q.Status = string(st)
	}
	if f.ref != "" {
		ref, err := otelop.ParseRef(f.ref)
		if err != nil {
			return q, badInput("--ref: %q is not COLLECTION/ID", f.ref)
		}
		q.Ref = &ref
	}
	if f.orchestrated != "" {
		b, err := strconv.ParseBool(f.orchestrated)
		if err != nil {
			return q, badInput("--orchestrated: %q is not true or false", f.orchestrated)
		}
		q.Orchestrated = &b
	}
	var err error
	if q.Since, err = parseTime(f.since, now); err != nil {
		return q, badInput("--since: %v", err)
	}
	if q.Until, err = parseTime(f.until, now); err != nil {
		return q, badInput("--until: %v", err)
	}
	if f.limit < 1 || f.limit > taskrun.MaxLimit {
		return q, badInput("--limit: %d is not between 1 and %d", f.limit, taskrun.MaxLimit)
	}
	if _, err := q.Normalize(); err != nil {
		return q, badInput("%v", err)
	}
	return q, nil
}

// parseTime reads RFC 3339, a date, or an age before now ("15m", "7d").
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("cannot read %q as a time (RFC 3339 like 2026-01-02T15:04:05Z, a date like 2026-01-02, or an age like 15m, 2h, 7d)", s)
}

func newListCmd(root *rootOptions) *cobra.Command {
	var f queryFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List TaskRuns, newest first",
		Example: `  otelop runs list --op bulk_delete_jobs --status failed --since 24h
  otelop runs list --user alice --json | jq .input_dump
  otelop runs list --ref jobs/job-0042
  otelop runs list --limit 20 --before 01939c3e-...   # the next page`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.query(time.Now())
			if err != nil {
				return err
			}
			var runs []taskrun.TaskRun
			err = root.withStore(cmd.Context(), func(ctx context.Context, st taskrun.Store) (err error) {
				runs, err = st.Find(ctx, q)
				return err
			})
			if err != nil {
				if errors.Is(err, taskrun.ErrInvalidQuery) {
					return usageError{err}
				}
				return err
			}
			out := cmd.OutOrStdout()
			if f.jsonOut {
				return writeJSONLines(out, runs)
			}
			writeTable(out, runs, time.Local)
			if len(runs) == q.Limit {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: --before %s\n", runs[len(runs)-1].ID)
			}
			return nil
		},
	}
	f.register(cmd, 50, true)
	return cmd
}

func newShowCmd(root *rootOptions) *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one TaskRun: actor, flags, input, refs, error and traceback, log entries, trace link",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r taskrun.TaskRun
			err := root.withStore(cmd.Context(), func(ctx context.Context, st taskrun.Store) (err error) {
				r, err = st.Get(ctx, strings.TrimSpace(args[0]))
				return err
			})
			if errors.Is(err, taskrun.ErrNotFound) {
				return fmt.Errorf("no TaskRun with id %q", args[0])
			}
			if err != nil {
				return err
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			writeRun(cmd.OutOrStdout(), r, time.Local, traceURL())
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "the whole document as JSON")
	return cmd
}

// traceURL returns the trace link template from OTELOP_TRACE_URL.
func traceURL() string {
	if u := os.Getenv(httpapi.TraceURLEnv); u != "" {
		return u
	}
	return httpapi.DefaultTraceURL
}

func newTailCmd(root *rootOptions) *cobra.Command {
	var (
		f        queryFlags
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow TaskRuns as they start and finish (Ctrl-C stops)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.query(time.Now())
			if err != nil {
				return err
			}
			if interval <= 0 {
				return badInput("--interval: %s is not positive", interval)
			}
			st, err := root.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close(context.Background())
			return tail(cmd.Context(), st, q, interval, root.timeout, cmd.OutOrStdout(), f.jsonOut)
		},
	}
	f.register(cmd, 10, false)
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to poll the store")
	return cmd
}

// tail prints the last q.Limit runs, then every run that starts or changes
// state, until ctx ends.
func tail(ctx context.Context, st taskrun.Reader, q taskrun.Query, interval, timeout time.Duration, w io.Writer, jsonOut bool) error {
	tr := &tailer{seen: map[string]tailSeen{}}
	if err := tr.poll(ctx, st, q, timeout, w, jsonOut); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			pq := q
			pq.Limit = taskrun.MaxLimit
			if wm := tr.watermark(); !wm.IsZero() && wm.After(pq.Since) {
				pq.Since = wm
			}
			if err := tr.poll(ctx, st, pq, timeout, w, jsonOut); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

type tailSeen struct {
	status  taskrun.Status
	started time.Time
}

type tailer struct{ seen map[string]tailSeen }

// watermark is where the next poll starts: the start of the oldest run
// still open, or of the newest run seen when every run is final.
func (t *tailer) watermark() time.Time {
	var oldestOpen, newest time.Time
	for _, s := range t.seen {
		if !s.status.Final() && (oldestOpen.IsZero() || s.started.Before(oldestOpen)) {
			oldestOpen = s.started
		}
		if s.started.After(newest) {
			newest = s.started
		}
	}
	if !oldestOpen.IsZero() {
		return oldestOpen
	}
	return newest
}

func (t *tailer) poll(ctx context.Context, st taskrun.Reader, q taskrun.Query, timeout time.Duration, w io.Writer, jsonOut bool) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	runs, err := st.Find(pctx, q)
	if err != nil {
		return err
	}
	slices.Reverse(runs) // oldest first
	for _, r := range runs {
		if prev, ok := t.seen[r.ID]; ok && prev.status == r.Status {
			continue
		}
		t.seen[r.ID] = tailSeen{status: r.Status, started: r.StartedAt}
		if jsonOut {
			err = writeJSONLines(w, []taskrun.TaskRun{r})
		} else {
			_, err = fmt.Fprintln(w, tailLine(r, time.Local))
		}
		if err != nil {
			return err
		}
	}
	// Forget final runs older than the watermark: they cannot change.
	wm := t.watermark()
	for id, s := range t.seen {
		if s.status.Final() && s.started.Before(wm) {
			delete(t.seen, id)
		}
	}
	return nil
}
