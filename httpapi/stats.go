package httpapi

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/otelop/otelop/taskrun"
)

// maxStatsRuns bounds the runs one stats request reads from the store.
const maxStatsRuns = 50_000

// Stats is the body of GET /api/operations/{name}/stats: the calls of one
// operation in [Since, Until), split into equal buckets.
type Stats struct {
	Operation     string    `json:"operation"`
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	BucketSeconds float64   `json:"bucket_seconds"`
	Runs          int       `json:"runs"`
	Failed        int       `json:"failed"`
	Running       int       `json:"running"`
	// FailureRate is Failed over the finished runs, 0 when none finished.
	FailureRate float64 `json:"failure_rate"`
	// P50MS and P95MS are duration percentiles of the finished runs.
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
	// Truncated is set when the window held more runs than one request
	// reads (50,000); the figures then cover the newest of them.
	Truncated bool     `json:"truncated"`
	Buckets   []Bucket `json:"buckets"`
}

// Bucket is one time slice of [Stats].
type Bucket struct {
	Start  time.Time `json:"start"`
	Count  int       `json:"count"`
	Failed int       `json:"failed"`
	P50MS  float64   `json:"p50_ms"`
	P95MS  float64   `json:"p95_ms"`
}

func (h *Handler) operationStats(w http.ResponseWriter, r *http.Request) {
	if e := checkParams(r, "since", "until", "buckets"); e != nil {
		writeError(w, e)
		return
	}
	v := r.URL.Query()
	now := time.Now().UTC()
	st := Stats{Operation: r.PathValue("name"), Until: now, Since: now.Add(-24 * time.Hour)}
	n := 24
	for k, dst := range map[string]*time.Time{"since": &st.Since, "until": &st.Until} {
		if err := parseTimeParam(v, k, dst); err != nil {
			writeError(w, badRequest("%v", err))
			return
		}
		*dst = dst.UTC()
	}
	if s := v.Get("buckets"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 || n > 1000 {
			writeError(w, badRequest("buckets %q is not a number from 1 to 1000", s))
			return
		}
	}
	if !st.Since.Before(st.Until) {
		writeError(w, badRequest("since %s is not before until %s", st.Since.Format(time.RFC3339), st.Until.Format(time.RFC3339)))
		return
	}
	width := st.Until.Sub(st.Since) / time.Duration(n)
	if width <= 0 {
		writeError(w, badRequest("the window is too short for %d buckets", n))
		return
	}
	st.BucketSeconds = width.Seconds()

	ctx, cancel := h.storeCtx(r)
	defer cancel()
	q := taskrun.Query{Operation: st.Operation, Since: st.Since, Until: st.Until, Limit: taskrun.MaxLimit}
	durs := make([][]float64, n)
	var all []float64
	st.Buckets = make([]Bucket, n)
	for i := range st.Buckets {
		st.Buckets[i].Start = st.Since.Add(time.Duration(i) * width)
	}
	for {
		runs, err := h.store.Find(ctx, q)
		if err != nil {
			writeError(w, h.storeError(r, err))
			return
		}
		for i := range runs {
			run := &runs[i]
			b := min(int(run.StartedAt.Sub(st.Since)/width), n-1)
			st.Runs++
			st.Buckets[b].Count++
			switch run.Status {
			case taskrun.StatusFailed:
				st.Failed++
				st.Buckets[b].Failed++
			case taskrun.StatusRunning, taskrun.StatusPending:
				st.Running++
				continue
			}
			durs[b] = append(durs[b], run.DurationMS)
			all = append(all, run.DurationMS)
		}
		if len(runs) < q.Limit {
			break
		}
		if st.Runs >= maxStatsRuns {
			st.Truncated = true
			break
		}
		q.Before = runs[len(runs)-1].ID
	}
	for i := range st.Buckets {
		st.Buckets[i].P50MS, st.Buckets[i].P95MS = percentiles(durs[i])
	}
	st.P50MS, st.P95MS = percentiles(all)
	if len(all) > 0 {
		st.FailureRate = float64(st.Failed) / float64(len(all))
	}
	writeJSON(w, http.StatusOK, st)
}

// percentiles returns the 50th and 95th percentiles of d (nearest rank),
// sorting it; zeros when d is empty.
func percentiles(d []float64) (p50, p95 float64) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	return rank(0.50), rank(0.95)
}
