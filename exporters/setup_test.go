package exporters_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otelop/otelop/exporters"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

type pingIn struct {
	otelop.Request
	N int `json:"n"`
}

type pingOut struct{ otelop.Receipt }

func pingOp(t *testing.T, tp *sdktrace.TracerProvider) *otelop.Op[pingIn, pingOut] {
	t.Helper()
	return otelop.Define(otelop.Spec{Name: "ping", Description: "d", Category: "test", Observed: true},
		func(context.Context, pingIn) (pingOut, error) { return pingOut{}, nil },
		otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
}

// clearOTelEnv makes a test independent of the OTEL_* variables of the
// machine it runs on.
func clearOTelEnv(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_EXPORTER",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", exporters.StoreEnv,
		exporters.SpillFileEnv} {
		t.Setenv(k, "")
	}
}

func TestSamplingNeverLosesTaskRuns(t *testing.T) {
	tests := []struct {
		sampler, arg string
		wantSpans    bool
	}{
		{"traceidratio", "0", false},
		{"always_off", "", false},
		{"parentbased_traceidratio", "0", false},
		{"always_on", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.sampler+"_"+tt.arg, func(t *testing.T) {
			clearOTelEnv(t)
			t.Setenv("OTEL_TRACES_SAMPLER", tt.sampler)
			t.Setenv("OTEL_TRACES_SAMPLER_ARG", tt.arg)
			exp := tracetest.NewInMemoryExporter()
			store := memstore.New()
			tp, shutdown, err := exporters.Setup(context.Background(), exporters.WithSpanExporter(exp),
				exporters.WithStore(store), exporters.WithoutGlobal())
			if err != nil {
				t.Fatal(err)
			}
			op := pingOp(t, tp)
			for i := range 20 {
				if _, err := op.Call(context.Background(), pingIn{N: i}); err != nil {
					t.Fatal(err)
				}
			}
			if err := tp.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := len(exp.GetSpans())
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := store.Len(); got != 20 {
				t.Errorf("%d TaskRuns, want 20", got)
			}
			if (spans > 0) != tt.wantSpans || (tt.wantSpans && spans != 20) {
				t.Errorf("%d spans exported (want spans: %v)", spans, tt.wantSpans)
			}
		})
	}
}

func TestSetupRejectsInvalidEnv(t *testing.T) {
	tests := []struct{ key, value, want string }{
		{"OTEL_TRACES_SAMPLER", "sometimes", `OTEL_TRACES_SAMPLER="sometimes"`},
		{"OTEL_TRACES_SAMPLER_ARG", "1.5", `OTEL_TRACES_SAMPLER_ARG="1.5"`},
		{"OTEL_TRACES_EXPORTER", "carrier-pigeon", `OTEL_TRACES_EXPORTER="carrier-pigeon"`},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "smoke-signals", `OTEL_EXPORTER_OTLP_PROTOCOL="smoke-signals"`},
		{exporters.StoreEnv, "cassandra://x", "unsupported store URI"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			clearOTelEnv(t)
			t.Setenv("OTEL_TRACES_EXPORTER", "none")
			if tt.key == "OTEL_TRACES_SAMPLER_ARG" {
				t.Setenv("OTEL_TRACES_SAMPLER", "traceidratio")
			}
			if tt.key == "OTEL_EXPORTER_OTLP_PROTOCOL" {
				t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			}
			t.Setenv(tt.key, tt.value)
			_, shutdown, err := exporters.Setup(context.Background(), exporters.WithoutGlobal())
			if err == nil {
				_ = shutdown(context.Background())
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to name %q", err, tt.want)
			}
		})
	}
}

// An unreachable OTLP endpoint must not block or fail calls, nor cost a
// TaskRun.
func TestUnreachableCollector(t *testing.T) {
	for _, proto := range []string{"grpc", "http/protobuf"} {
		t.Run(proto, func(t *testing.T) {
			clearOTelEnv(t)
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			store := memstore.New()
			tp, shutdown, err := exporters.Setup(context.Background(), exporters.WithStore(store), exporters.WithoutGlobal(),
				exporters.WithServiceName("unreachable-test"))
			if err != nil {
				t.Fatal(err)
			}
			op := pingOp(t, tp)
			const calls = 3000 // more than the batch span processor's queue
			for i := range calls {
				if _, err := op.Call(context.Background(), pingIn{N: i}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_ = shutdown(ctx) // the exporter's error is expected; the TaskRuns are not lost
			if got := store.Len(); got != calls {
				t.Errorf("%d TaskRuns, want %d", got, calls)
			}
			runs, _ := store.Find(context.Background(), taskrun.Query{Limit: 1})
			if len(runs) != 1 || runs[0].ServiceName != "unreachable-test" {
				t.Errorf("service name: %+v", runs)
			}
		})
	}
}

func TestSetupOpensAndClosesTheStore(t *testing.T) {
	clearOTelEnv(t)
	path := filepath.Join(t.TempDir(), "setup.db")
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	t.Setenv(exporters.StoreEnv, "sqlite:"+path)
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	tp, shutdown, err := exporters.Setup(context.Background(), exporters.WithServiceVersion("1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	if otel.GetTracerProvider() != tp {
		t.Error("the provider was not installed globally")
	}
	if f := otel.GetTextMapPropagator().Fields(); !strings.Contains(strings.Join(f, ","), "traceparent") || !strings.Contains(strings.Join(f, ","), "baggage") {
		t.Errorf("propagator fields %v", f)
	}
	var _ propagation.TextMapPropagator = otel.GetTextMapPropagator()
	out, err := pingOp(t, tp).Call(context.Background(), pingIn{})
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := exporters.OpenStore(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	r, err := st.Get(context.Background(), out.TaskRunID)
	if err != nil {
		t.Fatal(err)
	}
	if r.ServiceName != "from-env" || r.Status != taskrun.StatusSuccess {
		t.Errorf("run %s %s", r.ServiceName, r.Status)
	}
}
