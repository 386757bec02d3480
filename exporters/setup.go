package exporters

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/otelop/otelop/taskrun"
)

// Option configures Setup.
type Option func(*setupConfig)

type setupConfig struct {
	serviceName, serviceVersion string
	store                       taskrun.Store
	storeURI                    string
	exporter                    sdktrace.SpanExporter
	sampler                     sdktrace.Sampler
	procOpts                    []taskrun.ProcessorOption
	proc                        *taskrun.Processor
	attrs                       []attribute.KeyValue
	noGlobal                    bool
}

// WithServiceName sets service.name. Without it, OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) names the service, and failing
// that the executable's name.
func WithServiceName(name string) Option { return func(c *setupConfig) { c.serviceName = name } }

// WithServiceVersion sets service.version.
func WithServiceVersion(v string) Option { return func(c *setupConfig) { c.serviceVersion = v } }

// WithResourceAttributes adds attributes to the resource.
func WithResourceAttributes(kv ...attribute.KeyValue) Option {
	return func(c *setupConfig) { c.attrs = append(c.attrs, kv...) }
}

// WithStore makes the TaskRuns go to st, which the caller owns: the
// shutdown function flushes into it but does not close it.
func WithStore(st taskrun.Store) Option { return func(c *setupConfig) { c.store = st } }

// WithStoreURI opens the TaskRun store from uri (see OpenStore) instead of
// OTELOP_STORE; the shutdown function closes it.
func WithStoreURI(uri string) Option { return func(c *setupConfig) { c.storeURI = uri } }

// WithSpanExporter exports spans with exp instead of the exporter that
// OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_* describe.
func WithSpanExporter(exp sdktrace.SpanExporter) Option {
	return func(c *setupConfig) { c.exporter = exp }
}

// WithSampler samples with s instead of the sampler OTEL_TRACES_SAMPLER
// describes. Operation spans are recorded whatever s decides (see
// taskrun.RecordOperations).
func WithSampler(s sdktrace.Sampler) Option { return func(c *setupConfig) { c.sampler = s } }

// SpillFileEnv is the environment variable that names the TaskRun
// processor's spill file (see taskrun.WithSpillFile) when Setup builds the
// processor.
const SpillFileEnv = "OTELOP_SPILL_FILE"

// WithProcessorOptions configures the TaskRun processor that Setup builds;
// they apply after the spill file that OTELOP_SPILL_FILE names, so
// taskrun.WithSpillFile here wins over it (taskrun.WithSpillFile("") turns
// the spill file off).
func WithProcessorOptions(opts ...taskrun.ProcessorOption) Option {
	return func(c *setupConfig) { c.procOpts = append(c.procOpts, opts...) }
}

// WithTaskRunProcessor uses p, built by the caller over a store the caller
// owns, instead of building a processor (so the caller can read its Stats).
// The shutdown function still shuts p down, first.
func WithTaskRunProcessor(p *taskrun.Processor) Option {
	return func(c *setupConfig) { c.proc = p }
}

// WithoutGlobal leaves the global tracer provider and propagator alone.
func WithoutGlobal() Option { return func(c *setupConfig) { c.noGlobal = true } }

// Setup builds the TracerProvider of an otelop process:
//
//   - the resource: service.name (WithServiceName, else OTEL_SERVICE_NAME,
//     else the executable's name), service.version, OTEL_RESOURCE_ATTRIBUTES,
//     host and SDK attributes;
//   - the span exporter chosen by OTEL_TRACES_EXPORTER (otlp, console or
//     none; default otlp) and OTEL_EXPORTER_OTLP_* (protocol grpc or
//     http/protobuf, endpoint, headers), through
//     go.opentelemetry.io/contrib/exporters/autoexport, behind a batch span
//     processor that never blocks a call;
//   - the sampler from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG,
//     wrapped by taskrun.RecordOperations so that a sampled-out trace still
//     yields its TaskRuns;
//   - the TaskRun processor, writing to the store of WithStore, or the one
//     OpenStore opens from WithStoreURI or OTELOP_STORE (default
//     sqlite:otelop.db), with the spill file OTELOP_SPILL_FILE names, if
//     any: the TaskRuns that shutdown cannot write go there, and the next
//     Setup with the same spill file writes them (see taskrun.WithSpillFile);
//   - unless WithoutGlobal, the provider and the W3C TraceContext + Baggage
//     propagators installed globally.
//
// The returned shutdown function writes every pending TaskRun first, then
// flushes and stops the exporter, then closes the store if Setup opened it;
// it returns their errors joined. An invalid OTEL_* value makes Setup fail
// with an error naming the variable.
func Setup(ctx context.Context, opts ...Option) (*sdktrace.TracerProvider, func(context.Context) error, error) {
	var cfg setupConfig
	for _, o := range opts {
		o(&cfg)
	}

	sampler := cfg.sampler
	if sampler == nil {
		s, err := SamplerFromEnv()
		if err != nil {
			return nil, nil, err
		}
		sampler = s
	}

	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}

	exp := cfg.exporter
	if exp == nil {
		if exp, err = autoexport.NewSpanExporter(ctx); err != nil {
			return nil, nil, fmt.Errorf("exporters: span exporter from OTEL_TRACES_EXPORTER=%q, OTEL_EXPORTER_OTLP_PROTOCOL=%q: %w",
				os.Getenv("OTEL_TRACES_EXPORTER"), firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"), err)
		}
	}

	store, owned := cfg.store, false
	if store == nil && cfg.proc == nil {
		uri := cfg.storeURI
		if uri == "" {
			uri = StoreURIFromEnv()
		}
		if store, err = OpenStore(ctx, uri); err != nil {
			_ = exp.Shutdown(ctx)
			return nil, nil, fmt.Errorf("exporters: TaskRun store: %w", err)
		}
		owned = true
	}

	proc := cfg.proc
	if proc == nil {
		procOpts := cfg.procOpts
		if path := strings.TrimSpace(os.Getenv(SpillFileEnv)); path != "" {
			procOpts = append([]taskrun.ProcessorOption{taskrun.WithSpillFile(path)}, procOpts...)
		}
		proc = taskrun.NewProcessor(store, procOpts...)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(taskrun.RecordOperations(sampler)),
		sdktrace.WithSpanProcessor(proc), // first: it drains before the exporter at shutdown
		sdktrace.WithBatcher(exp),
	)
	if !cfg.noGlobal {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	}
	shutdown := func(ctx context.Context) error {
		// The TaskRuns first, so that a slow or unreachable trace backend
		// cannot use up the time they need.
		errs := []error{proc.Shutdown(ctx), tp.Shutdown(ctx)}
		if owned {
			errs = append(errs, store.Close(ctx))
		}
		return errors.Join(errs...)
	}
	return tp, shutdown, nil
}

func newResource(ctx context.Context, cfg setupConfig) (*resource.Resource, error) {
	var kv []attribute.KeyValue
	if cfg.serviceVersion != "" {
		kv = append(kv, semconv.ServiceVersion(cfg.serviceVersion))
	}
	kv = append(kv, cfg.attrs...)
	detectors := []resource.Option{
		resource.WithAttributes(semconv.ServiceName(defaultServiceName())),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(kv...),
	}
	if cfg.serviceName != "" {
		detectors = append(detectors, resource.WithAttributes(semconv.ServiceName(cfg.serviceName)))
	}
	res, err := resource.New(ctx, detectors...)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("exporters: resource (OTEL_RESOURCE_ATTRIBUTES=%q): %w", os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), err)
	}
	if errors.Is(err, resource.ErrPartialResource) && strings.TrimSpace(os.Getenv("OTEL_RESOURCE_ATTRIBUTES")) != "" {
		return nil, fmt.Errorf("exporters: OTEL_RESOURCE_ATTRIBUTES=%q: %w", os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), err)
	}
	return res, nil
}

func defaultServiceName() string {
	if exe, err := os.Executable(); err == nil {
		return "unknown_service:" + filepath.Base(exe)
	}
	return "unknown_service:go"
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// SamplerFromEnv returns the sampler OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG describe: always_on, always_off, traceidratio,
// parentbased_always_on (the default), parentbased_always_off or
// parentbased_traceidratio, with a ratio argument between 0 and 1 (default
// 1). Any other value is an error naming the variable.
func SamplerFromEnv() (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("exporters: OTEL_TRACES_SAMPLER_ARG=%q is not a ratio between 0 and 1", arg)
		}
		return r, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.TraceIDRatioBased(r), nil
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("exporters: OTEL_TRACES_SAMPLER=%q is not supported (want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)", name)
}
