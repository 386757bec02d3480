package httpapi

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

// queryParams are the parameters of GET /api/taskruns, one per
// taskrun.Query field.
var queryParams = []string{
	"operation", "status", "user_id", "channel", "flow_run_id", "trace_id",
	"idempotency_key", "tag", "orchestrated", "ref", "since", "until", "limit", "before",
}

// ParseQuery turns the parameters of GET /api/taskruns into a normalised
// taskrun.Query: operation, status, user_id, channel, flow_run_id,
// trace_id, idempotency_key, tag, orchestrated (true or false), ref
// (collection/document_id), since and until (RFC 3339), limit and before
// (the cursor). An unknown or repeated parameter, or a malformed value, is
// an error naming it.
func ParseQuery(v url.Values) (taskrun.Query, error) {
	var q taskrun.Query
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(v)) {
		vals := v[k]
		switch {
		case !slices.Contains(queryParams, k):
			errs = append(errs, fmt.Errorf("unknown parameter %q", k))
		case len(vals) > 1:
			errs = append(errs, fmt.Errorf("parameter %q is given %d times", k, len(vals)))
		}
	}
	strs := map[string]*string{
		"operation": &q.Operation, "status": &q.Status, "user_id": &q.UserID,
		"channel": &q.Channel, "flow_run_id": &q.FlowRunID, "trace_id": &q.TraceID,
		"idempotency_key": &q.IdempotencyKey, "tag": &q.Tag, "before": &q.Before,
	}
	for k, dst := range strs {
		*dst = v.Get(k)
	}
	if s := v.Get("orchestrated"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("orchestrated %q is not true or false", s))
		}
		q.Orchestrated = &b
	}
	if s := v.Get("ref"); s != "" {
		ref, err := otelop.ParseRef(s)
		if err != nil {
			errs = append(errs, err)
		}
		q.Ref = &ref
	}
	for k, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if err := parseTimeParam(v, k, dst); err != nil {
			errs = append(errs, err)
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("limit %q is not a number", s))
		}
		q.Limit = n
		if n == 0 && err == nil {
			errs = append(errs, errors.New("limit must be at least 1"))
		}
	}
	if len(errs) > 0 {
		return q, fmt.Errorf("%w: %w", taskrun.ErrInvalidQuery, errors.Join(errs...))
	}
	return q.Normalize()
}

// parseTimeParam sets *dst from the RFC 3339 time in parameter k of v, when
// the parameter is there.
func parseTimeParam(v url.Values, k string, dst *time.Time) error {
	s := v.Get(k)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", k, s)
	}
	*dst = t
	return nil
}
