// Command soak holds a steady rate of observed operation calls through the
// TaskRun processor into a store and reports whether memory stays flat:
// the resident set size (RSS) sampled every interval, its growth from the
// end of the warm-up to the end of the run, and the processor's counts.
//
//	go run ./internal/soak -duration 5m -rate 10000            # SQLite file in a temporary directory
//	go run ./internal/soak -duration 5m -rate 10000 -store memory:   # memstore keeps every run: RSS grows by design
//
// It exits with status 1 when a run was dropped or failed, when the rate
// could not be held, or when RSS grew by more than -max-growth.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelop/otelop/exporters"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
)

type input struct {
	otelop.Request
	JobID string `json:"job_id"`
	Title string `json:"title"`
}

type output struct {
	otelop.Receipt
	JobID string `json:"job_id" otelop:"ref=jobs"`
}

type config struct {
	duration, warmup, interval time.Duration
	rate                       int
	store                      string
	maxGrowth                  float64
}

func main() {
	var c config
	flag.DurationVar(&c.duration, "duration", 5*time.Minute, "how long to hold the rate")
	flag.DurationVar(&c.warmup, "warmup", 30*time.Second, "RSS growth is measured from the end of this warm-up")
	flag.DurationVar(&c.interval, "interval", 10*time.Second, "RSS sampling interval")
	flag.IntVar(&c.rate, "rate", 10000, "observed calls per second")
	flag.StringVar(&c.store, "store", "", "TaskRun store URI (default: an SQLite file in a temporary directory)")
	flag.Float64Var(&c.maxGrowth, "max-growth", 10, "largest acceptable RSS growth, in percent")
	flag.Parse()
	if err := run(context.Background(), c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, w io.Writer) error {
	if c.store == "" {
		dir, err := os.MkdirTemp("", "otelop-soak")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.store = "sqlite:" + filepath.Join(dir, "soak.db")
	}
	store, err := exporters.OpenStore(ctx, c.store)
	if err != nil {
		return err
	}
	defer store.Close(context.Background())
	p := taskrun.NewProcessor(store)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	op := otelop.Define(otelop.Spec{Name: "soak_op", Description: "A call of the soak test", Category: "soak", Observed: true},
		func(_ context.Context, in input) (output, error) { return output{JobID: in.JobID}, nil },
		otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))

	fmt.Fprintf(w, "soak: %d calls/s for %s into %s (GOMAXPROCS %d)\n", c.rate, c.duration, c.store, runtime.GOMAXPROCS(0))
	// Calls go out in ticks of 1 ms, each with its share of the rate.
	const tick = time.Millisecond
	start := time.Now()
	next := start
	calls, warmRSS, peak := 0, int64(0), int64(0)
	nextSample := start.Add(c.warmup)
	in := input{Request: otelop.Request{UserID: "soak", Channel: "bench"}, JobID: "job-1", Title: "a title"}
	for elapsed := time.Duration(0); elapsed < c.duration; elapsed = time.Since(start) {
		due := int(float64(c.rate) * elapsed.Seconds())
		for ; calls < due; calls++ {
			in.JobID = "job-" + strconv.Itoa(calls)
			if _, err := op.Call(ctx, in); err != nil {
				return err
			}
		}
		if now := time.Now(); !now.Before(nextSample) {
			rss, err := readRSS()
			if err != nil {
				return err
			}
			if warmRSS == 0 {
				warmRSS = rss
			}
			peak = max(peak, rss)
			st := p.Stats()
			fmt.Fprintf(w, "%6.0fs  calls %9d  RSS %7.1f MiB  queued %5d  written %9d  dropped %d\n",
				now.Sub(start).Seconds(), calls, float64(rss)/(1<<20), st.Queued, st.Written, st.Dropped)
			nextSample = nextSample.Add(c.interval)
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
	held := float64(calls) / time.Since(start).Seconds()
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := tp.Shutdown(sctx); err != nil {
		return err
	}
	endRSS, err := readRSS()
	if err != nil {
		return err
	}
	st := p.Stats()
	growth := 0.0
	if warmRSS > 0 {
		growth = 100 * float64(endRSS-warmRSS) / float64(warmRSS)
	}
	fmt.Fprintf(w, "calls %d (%.0f/s held), runs written %d, dropped %d, failed %d; RSS after warm-up %.1f MiB, at the end %.1f MiB (%+.1f%%), peak %.1f MiB\n",
		calls, held, st.Written/2, st.Dropped, st.Failed, float64(warmRSS)/(1<<20), float64(endRSS)/(1<<20), growth, float64(peak)/(1<<20))
	var errs []error
	if st.Dropped != 0 || st.Failed != 0 {
		errs = append(errs, fmt.Errorf("%d states dropped, %d failed", st.Dropped, st.Failed))
	}
	if held < 0.95*float64(c.rate) {
		errs = append(errs, fmt.Errorf("held %.0f calls/s, below the %d asked", held, c.rate))
	}
	if warmRSS > 0 && growth > c.maxGrowth {
		errs = append(errs, fmt.Errorf("RSS grew %.1f%%, more than %.0f%%", growth, c.maxGrowth))
	}
	return errors.Join(errs...)
}

// readRSS returns the process's resident set size from /proc/self/status.
func readRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}
