package e2e_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/otelop/otelop/internal/testutil"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun/memstore"
)

// collectorConfig is the OpenTelemetry Collector configuration shipped to
// users, relative to this package.
const collectorConfig = "../../collector-config.yaml"

// The one line of collector-config.yaml that switches the debug exporter on
// (it replaces pipelineExporters).
const (
	pipelineExporters = "      exporters: [otlp/jaeger, otlp/tempo]\n"
	debugExporters    = "      # exporters: [otlp/jaeger, otlp/tempo, debug]\n"
)

// The shipped collector-config.yaml, run by the jaeger binary (an
// OpenTelemetry Collector distribution) as the collector between the app
// and the backends: spans sent to it over OTLP/gRPC and OTLP/HTTP arrive in
// the test Jaeger through otlp/jaeger, and in a stand-in Tempo (an OTLP/gRPC
// server in this test) through otlp/tempo.
func TestCollectorConfigForwardsSpans(t *testing.T) {
	j := needJaeger(t)
	bin := jaegerBinary(t)
	cfg := collectorConfigForJaeger(t, false)
	tempo := startFakeTempo(t)
	grpcAddr, httpAddr, healthAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	col := startProcess(t, bin, []string{
		"--config", cfg,
		// No Prometheus endpoint on the fixed port 8888 (the collector's own
		// metrics), which two collectors on one machine would both want.
		"--set=service.telemetry.metrics.level=none",
	}, []string{
		"OTLP_GRPC_ENDPOINT=" + grpcAddr,
		"OTLP_HTTP_ENDPOINT=" + httpAddr,
		"HEALTH_CHECK_ENDPOINT=" + healthAddr,
		"JAEGER_OTLP_ENDPOINT=" + j.otlpGRPC,
		"TEMPO_OTLP_ENDPOINT=" + tempo.addr,
	})
	col.waitHTTP(t, "http://"+healthAddr+"/")
	col.waitTCP(t, grpcAddr)
	col.waitTCP(t, httpAddr)

	for _, tc := range []struct{ protocol, endpoint string }{
		{"grpc", "http://" + grpcAddr},
		{"http/protobuf", "http://" + httpAddr},
	} {
		name := strings.ReplaceAll(tc.protocol, "/", "_")
		t.Run(name, func(t *testing.T) {
			clearOTelEnv(t)
			service := uniqueService("collector-" + name)
			store := memstore.New()
			tp, flush := setupOTLP(t, tc.protocol, tc.endpoint, service, store)
			ops := defineJobOps(tp)
			out, err := ops.create.Call(context.Background(), createJobsIn{Request: otelop.Request{UserID: "carol"}, Titles: []string{"via the collector"}})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = ops.update.Call(context.Background(), updateJobIn{Request: otelop.Request{UserID: "carol"}, JobID: "job-404"})
			flush()

			okRun := getRun(t, store, out.TaskRunID)
			failRun := onlyRun(t, store, "e2e_update_job")
			for _, r := range []struct{ traceID, spanID, op string }{
				{okRun.TraceID, okRun.SpanID, "e2e_create_jobs"},
				{failRun.TraceID, failRun.SpanID, "e2e_update_job"},
			} {
				tr := waitTrace(t, j.query, r.traceID, 1)
				sp := tr.span(t, r.spanID)
				if sp.OperationName != r.op {
					t.Errorf("span %q, want %q", sp.OperationName, r.op)
				}
				if got := tr.serviceName(sp); got != service {
					t.Errorf("service %q, want %q", got, service)
				}
				tempo.waitSpan(t, r.traceID, r.spanID, col)
			}
			tr := waitTrace(t, j.query, failRun.TraceID, 1)
			tr.span(t, failRun.SpanID).wantTag(t, "otel.status_code", "ERROR")
			tr = waitTrace(t, j.query, okRun.TraceID, 1)
			tr.span(t, okRun.SpanID).wantTag(t, "otelop.taskrun.id", okRun.ID)
		})
	}
}

// The one-line switch that adds the debug exporter to the pipeline keeps the
// configuration valid.
func TestCollectorConfigDebugSwitch(t *testing.T) {
	bin := jaegerBinary(t)
	cfg := collectorConfigForJaeger(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "validate", "--config", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("jaeger validate of collector-config.yaml with the debug exporter switched on: %v\n%s", err, out)
	}
}

// jaegerBinary returns the jaeger binary that scripts/test.sh builds:
// OTELOP_TEST_JAEGER_BIN, else bin/jaeger at the repository root.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(binEnv)
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "jaeger")
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("no jaeger binary (%s, or bin/jaeger; scripts/test.sh builds it): %v", binEnv, err)
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s=1 but %s", requireEnv, msg)
		}
		t.Skip(msg)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// collectorConfigForJaeger writes collector-config.yaml as the jaeger binary
// can load it and returns its path. The jaeger distribution has no
// health_check extension (the contrib image users run has it); it has
// healthcheckv2, which reads the same settings (endpoint) in its v1 mode.
// That rename is the only change. withDebug also applies the documented
// one-line switch that adds the debug exporter.
func collectorConfigForJaeger(t *testing.T, withDebug bool) string {
	t.Helper()
	b, err := os.ReadFile(collectorConfig)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	replace := func(old, new string) {
		t.Helper()
		if n := strings.Count(s, old); n != 1 {
			t.Fatalf("collector-config.yaml holds %q %d times, want once", old, n)
		}
		s = strings.Replace(s, old, new, 1)
	}
	replace("\n  health_check:\n", "\n  healthcheckv2:\n")
	replace("  extensions: [health_check]\n", "  extensions: [healthcheckv2]\n")
	if withDebug {
		replace(pipelineExporters, "")
		replace(debugExporters, strings.Replace(debugExporters, "# ", "", 1))
	}
	path := filepath.Join(t.TempDir(), "collector-config.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// process is a child process whose output is kept for failure messages.
type process struct {
	name string
	out  testutil.SyncBuffer
	done chan struct{}
	err  error // set before done is closed
}

// startProcess starts bin with args and extra environment; t.Cleanup stops
// it (SIGTERM, then SIGKILL after 10s) and logs its output if t failed.
func startProcess(t *testing.T, bin string, args, env []string) *process {
	t.Helper()
	p := &process{name: filepath.Base(bin), done: make(chan struct{})}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.tail(80))
		}
	})
	return p
}

func (p *process) tail(lines int) string {
	s := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}

// exited fails t if the process has ended.
func (p *process) exited(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited (%v); its output:\n%s", p.name, p.err, p.tail(80))
	default:
	}
}

// waitHTTP polls url until it answers 200.
func (p *process) waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		p.exited(t)
		resp, err := httpClient.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not ready within %v: %v; its output:\n%s", p.name, url, waitFor, err, p.tail(80))
		}
		time.Sleep(pollEvery)
	}
}

// waitTCP polls addr until it accepts a connection.
func (p *process) waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		p.exited(t)
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s does not accept connections within %v: %v; its output:\n%s", p.name, addr, waitFor, err, p.tail(80))
		}
		time.Sleep(pollEvery)
	}
}

// fakeTempo stands in for Tempo: an OTLP/gRPC trace receiver that records
// the spans it is sent.
type fakeTempo struct {
	coltracepb.UnimplementedTraceServiceServer
	addr  string
	mu    sync.Mutex
	spans map[string]bool // traceID/spanID, hex
}

func startFakeTempo(t *testing.T) *fakeTempo {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTempo{addr: l.Addr().String(), spans: map[string]bool{}}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, f)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return f
}

func (f *fakeTempo) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				f.spans[hex.EncodeToString(s.GetTraceId())+"/"+hex.EncodeToString(s.GetSpanId())] = true
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// waitSpan polls until the span arrived (col is the collector sending it).
func (f *fakeTempo) waitSpan(t *testing.T, traceID, spanID string, col *process) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		f.mu.Lock()
		ok := f.spans[traceID+"/"+spanID]
		f.mu.Unlock()
		if ok {
			return
		}
		col.exited(t)
		if time.Now().After(deadline) {
			t.Fatalf("span %s/%s did not reach the stand-in Tempo within %v", traceID, spanID, waitFor)
		}
		time.Sleep(pollEvery)
	}
}
