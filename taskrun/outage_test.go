package taskrun_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/mongostore"
	"github.com/otelop/otelop/taskrun/sqlitestore"
)

// The outage tests put a store out of service for outageLength under a
// steady load of operation calls, and then check that every call has
// exactly one final TaskRun and that no call failed or waited because of
// the outage.
const (
	outageLength = 10 * time.Second
	loadBefore   = 3 * time.Second // load before the outage
	loadAfter    = 3 * time.Second // load after the store is back
	loadWorkers  = 4
	// maxCallLatency is what a call may take at most under the race
	// detector: far below the outage, so a call that waited for the store
	// fails the test.
	maxCallLatency = 2 * time.Second
	// queueSize is the processor's default.
	queueSize = 8192
)

// loadResult is what the calls of a load returned.
type loadResult struct {
	want       map[string]taskrun.Status // TaskRunID -> the status the call implies
	calls      int
	elapsed    time.Duration
	latencies  []time.Duration // sorted
	unexpected []error
}

func (r *loadResult) rate() float64 { return float64(r.calls) / r.elapsed.Seconds() }

func (r *loadResult) latency(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(q*float64(len(r.latencies))))]
}

// startLoad calls op from workers goroutines, each once per every, until
// the returned function is called; that function returns the results.
func startLoad(op interface {
	Call(context.Context, in) (out, error)
}, workers int, every time.Duration) func() *loadResult {
	var (
		mu   sync.Mutex
		res  = &loadResult{want: map[string]taskrun.Status{}}
		n    atomic.Int64
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				i := int(n.Add(1))
				t0 := time.Now()
				o, err := op.Call(context.Background(), in{N: i})
				lat := time.Since(t0)
				mu.Lock()
				res.calls++
				res.latencies = append(res.latencies, lat)
				switch {
				case err == nil:
					res.want[o.TaskRunID] = taskrun.StatusSuccess
				case errors.Is(err, errPlanned):
					res.want[o.TaskRunID] = taskrun.StatusFailed
				default:
					res.unexpected = append(res.unexpected, err)
				}
				mu.Unlock()
			}
		})
	}
	return func() *loadResult {
		close(done)
		wg.Wait()
		res.elapsed = time.Since(start)
		slices.Sort(res.latencies)
		return res
	}
}

// outage describes how a test puts its store out of service.
type outage struct {
	name     string // of the operation
	store    taskrun.Store
	every    time.Duration // per worker
	down, up func(t *testing.T)
	opts     []taskrun.ProcessorOption
}

func runOutage(t *testing.T, o outage) {
	ctx := context.Background()
	var errs errorLog
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p := taskrun.NewProcessor(o.store, append([]taskrun.ProcessorOption{taskrun.WithErrorHandler(errs.handle), taskrun.WithMeterProvider(mp)}, o.opts...)...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	defer func() { _ = tp.Shutdown(ctx) }()
	name := o.name
	op := failingOp(name, tp)

	// The queue's peak, in entries (the otelop.taskrun.queue.size metric,
	// what WithQueueSize bounds) and in states.
	var peakEntries, peakStates int64
	sampling, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampling:
				return
			case <-tick.C:
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(ctx, &rm); err != nil {
				continue
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "otelop.taskrun.queue.size" && len(g.DataPoints) == 1 {
						peakEntries = max(peakEntries, g.DataPoints[0].Value)
					}
				}
			}
			peakStates = max(peakStates, int64(p.Stats().Queued))
		}
	}()

	loadStart := time.Now()
	stop := startLoad(op, loadWorkers, o.every)
	time.Sleep(loadBefore)
	before := errs.len()
	o.down(t)
	downAt := time.Now()
	time.Sleep(outageLength)
	duringOutage := errs.len() - before
	o.up(t)
	upAt := time.Now()
	time.Sleep(loadAfter)
	res := stop()

	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := tp.ForceFlush(fctx); err != nil {
		t.Fatalf("ForceFlush after the outage: %v (stats %+v)", err, p.Stats())
	}
	drained := time.Since(upAt)
	st := p.Stats()
	close(sampling)
	<-sampled

	runs, err := o.store.Find(ctx, taskrun.Query{Operation: name, Limit: taskrun.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]taskrun.Status{}
	duplicated := 0
	for _, r := range runs {
		if _, seen := stored[r.ID]; seen {
			duplicated++
		}
		stored[r.ID] = r.Status
	}
	lost, wrong := 0, 0
	for id, want := range res.want {
		switch got, ok := stored[id]; {
		case !ok:
			lost++
		case got != want:
			wrong++
		}
	}
	final := 0
	for _, s := range stored {
		if s.Final() {
			final++
		}
	}
	t.Logf("%s: load %.0f calls/s from %d goroutines for %v (store out of service from %v to %v); %d calls, %d runs stored (%d final), %d lost, %d duplicated, %d with a wrong status; call latency max %v, p99 %v, p50 %v; %d write errors reported during the outage, %d retried writes; queue peak %d entries of %d (%d states); everything written %v after the store came back, %v after the load stopped",
		t.Name(), res.rate(), loadWorkers, res.elapsed.Round(time.Millisecond), downAt.Sub(loadStart).Round(100*time.Millisecond), upAt.Sub(loadStart).Round(100*time.Millisecond),
		res.calls, len(runs), final, lost, duplicated, wrong, res.latency(1).Round(time.Microsecond), res.latency(0.99).Round(time.Microsecond), res.latency(0.5).Round(time.Microsecond),
		duringOutage, st.Retried, peakEntries, queueSize, peakStates, drained.Round(100*time.Millisecond), (drained - loadAfter).Round(100*time.Millisecond))

	errs.mu.Lock()
	if len(errs.errs) > before {
		t.Logf("first error reported during the outage: %v", errs.errs[before])
	}
	errs.mu.Unlock()
	if len(res.unexpected) > 0 {
		t.Errorf("%d calls returned an error of their own, the first: %v", len(res.unexpected), res.unexpected[0])
	}
	if lost != 0 || duplicated != 0 || wrong != 0 || len(runs) != res.calls || final != res.calls || len(res.want) != res.calls {
		t.Errorf("%d calls: %d runs stored, %d final, %d lost, %d duplicated, %d wrong, %d distinct ids returned", res.calls, len(runs), final, lost, duplicated, wrong, len(res.want))
	}
	if max := res.latency(1); max > maxCallLatency {
		t.Errorf("a call took %v: it waited for the store", max)
	}
	if duringOutage == 0 || st.Retried == 0 {
		t.Errorf("no write failed during the outage (%d errors, stats %+v): the store was not out of service", duringOutage, st)
	}
	if st.Dropped != 0 || st.Failed != 0 || st.Written != st.Enqueued || st.Enqueued != uint64(2*res.calls) || st.Queued != 0 {
		t.Errorf("stats %+v for %d calls", st, res.calls)
	}
	if t.Failed() {
		errs.mu.Lock()
		for i, err := range errs.errs[:min(len(errs.errs), 5)] {
			t.Logf("reported error %d: %v", i+1, err)
		}
		errs.mu.Unlock()
	}
}

func skipOutage(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: the outage tests take about %v each", loadBefore+outageLength+loadAfter)
	}
}

// TestSQLiteOutageLocked: another connection holds the SQLite file's write
// lock for the outage, as a long transaction of another process would. The
// store's short busy timeout makes the writes fail with SQLITE_BUSY.
func TestSQLiteOutageLocked(t *testing.T) {
	skipOutage(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outage.db")
	store, err := sqlitestore.Open(ctx, path, sqlitestore.WithBusyTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var conn *sql.Conn
	runOutage(t, outage{
		name:  "outage_sqlite_locked",
		store: store,
		every: 10 * time.Millisecond,
		down: func(t *testing.T) {
			var err error
			if conn, err = db.Conn(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
				t.Fatal(err)
			}
		},
		up: func(t *testing.T) {
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Error(err)
			}
			_ = conn.Close()
		},
	})
}

// TestSQLiteOutageUnwritable: the SQLite file and its write-ahead log are
// made immutable (chattr +i) for the outage: every write to them fails with
// EPERM, even for root and through descriptors already open, as on a disk
// that turned read-only. The test is skipped where chattr +i is not
// available (not root, or a file system without the flag).
func TestSQLiteOutageUnwritable(t *testing.T) {
	skipOutage(t)
	ctx := context.Background()
	dir := t.TempDir()
	chattr := func(flag string, paths ...string) error {
		out, err := exec.Command("chattr", append([]string{flag}, paths...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("chattr %s: %v: %s", flag, err, out)
		}
		return nil
	}
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chattr("+i", probe); err != nil {
		t.Skipf("chattr +i is not available here: %v", err)
	}
	if err := chattr("-i", probe); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "outage.db")
	files := []string{path, path + "-wal"}
	t.Cleanup(func() { _ = chattr("-i", files...) }) // or TempDir cannot remove them
	store, err := sqlitestore.Open(ctx, path, sqlitestore.WithBusyTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	runOutage(t, outage{
		name:  "outage_sqlite_unwritable",
		store: store,
		every: 10 * time.Millisecond,
		down: func(t *testing.T) {
			if err := chattr("+i", files...); err != nil {
				t.Fatal(err)
			}
		},
		up: func(t *testing.T) {
			if err := chattr("-i", files...); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestMongoOutage stops the MongoDB wire-protocol test server (SIGKILL)
// for the outage and starts it again on the same port and data directory.
// It needs the mongowire binary (tools/cmd/mongowire) named by
// OTELOP_TEST_MONGOWIRE_BIN; it is skipped without it, unless
// OTELOP_REQUIRE_SERVICES=1.
//
// The server is FerretDB on SQLite, whose updates scan the collection, so
// the load is light and the writes go 50 to a command.
func TestMongoOutage(t *testing.T) {
	skipOutage(t)
	bin := os.Getenv("OTELOP_TEST_MONGOWIRE_BIN")
	if bin == "" {
		if os.Getenv("OTELOP_REQUIRE_SERVICES") == "1" {
			t.Fatal("OTELOP_REQUIRE_SERVICES=1 but OTELOP_TEST_MONGOWIRE_BIN is unset")
		}
		t.Skip("OTELOP_TEST_MONGOWIRE_BIN is unset (scripts/test.sh builds bin/mongowire and sets it)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	srv := &mongowire{bin: bin, addr: freeAddr(t), dir: dir}
	srv.start(t)
	t.Cleanup(srv.stop)
	store, err := mongostore.Open(ctx, "mongodb://"+srv.addr+"/outage", mongostore.WithMaxWritesPerCommand(50))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	runOutage(t, outage{
		name:  "outage_mongo",
		store: store,
		every: 80 * time.Millisecond,
		down:  func(*testing.T) { srv.kill() },
		up:    srv.start,
	})
}

// mongowire runs the test server as a child process.
type mongowire struct {
	bin, addr, dir string
	starts         int
	cmd            *exec.Cmd
	exited         chan struct{}
}

func (m *mongowire) start(t *testing.T) {
	t.Helper()
	m.starts++
	uriFile := filepath.Join(m.dir, "uri-"+strconv.Itoa(m.starts))
	logFile, err := os.Create(filepath.Join(m.dir, "mongowire-"+strconv.Itoa(m.starts)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(m.bin, "-listen", m.addr, "-data", filepath.Join(m.dir, "data"), "-uri-file", uriFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(m.exited)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if fi, err := os.Stat(uriFile); err == nil && fi.Size() > 0 {
			return
		}
		select {
		case <-m.exited:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("mongowire exited before it was ready: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mongowire not ready after 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server at once, as a crash would.
func (m *mongowire) kill() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// stop ends the server cleanly.
func (m *mongowire) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(os.Interrupt)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
}

// freeAddr returns a loopback address whose port is free at the time and
// below the kernel's ephemeral range (32768 and up by default), so that no
// outgoing connection takes it while the server is down.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(10000+rand.IntN(22000)))
		if l, err := net.Listen("tcp", addr); err == nil {
			_ = l.Close()
			return addr
		}
	}
	t.Fatal("no free port found")
	return ""
}
