package e2e_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// The deployment files at the repository root, checked without Docker:
// they parse, and they agree with each other (mounted files exist, every
// host name is a compose service, every pipeline component is defined).

const repoRoot = "../.."

func readYAML(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// at walks m along path; it fails t when a step is missing.
func at(t *testing.T, m any, path ...string) any {
	t.Helper()
	cur := m
	for i, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s is a %T, not a mapping", strings.Join(path[:i], "."), cur)
		}
		if cur, ok = mm[p]; !ok {
			t.Fatalf("no %s", strings.Join(path[:i+1], "."))
		}
	}
	return cur
}

func str(t *testing.T, m any, path ...string) string {
	t.Helper()
	s, ok := at(t, m, path...).(string)
	if !ok {
		t.Fatalf("%s is not a string", strings.Join(path, "."))
	}
	return s
}

func strs(t *testing.T, m any, path ...string) []string {
	t.Helper()
	l, ok := at(t, m, path...).([]any)
	if !ok {
		t.Fatalf("%s is not a list", strings.Join(path, "."))
	}
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = fmt.Sprint(v)
	}
	return out
}

func keys(t *testing.T, m any, path ...string) []string {
	t.Helper()
	mm, ok := at(t, m, path...).(map[string]any)
	if !ok {
		t.Fatalf("%s is not a mapping", strings.Join(path, "."))
	}
	var k []string
	for key := range mm {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

var envRef = regexp.MustCompile(`\$\{([^}]*)\}`)

func TestCollectorConfigFile(t *testing.T) {
	cfg := readYAML(t, "collector-config.yaml")
	want := func(path, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	want("receivers.otlp.protocols.grpc.endpoint", str(t, cfg, "receivers", "otlp", "protocols", "grpc", "endpoint"), "${env:OTLP_GRPC_ENDPOINT:-0.0.0.0:4317}")
	want("receivers.otlp.protocols.http.endpoint", str(t, cfg, "receivers", "otlp", "protocols", "http", "endpoint"), "${env:OTLP_HTTP_ENDPOINT:-0.0.0.0:4318}")
	want("exporters.otlp/jaeger.endpoint", str(t, cfg, "exporters", "otlp/jaeger", "endpoint"), "${env:JAEGER_OTLP_ENDPOINT:-jaeger:4317}")
	want("exporters.otlp/tempo.endpoint", str(t, cfg, "exporters", "otlp/tempo", "endpoint"), "${env:TEMPO_OTLP_ENDPOINT:-tempo:4317}")
	at(t, cfg, "exporters", "debug")
	at(t, cfg, "extensions", "health_check")

	pipe := at(t, cfg, "service", "pipelines", "traces")
	if got := strs(t, pipe, "processors"); !slices.Equal(got, []string{"memory_limiter", "batch"}) {
		t.Errorf("processors %v, want memory_limiter first, then batch", got)
	}
	if got := strs(t, pipe, "exporters"); !slices.Equal(got, []string{"otlp/jaeger", "otlp/tempo"}) {
		t.Errorf("exporters %v", got)
	}
	if got := strs(t, cfg, "service", "extensions"); !slices.Equal(got, []string{"health_check"}) {
		t.Errorf("service.extensions %v", got)
	}
	for kind, used := range map[string][]string{
		"receivers":  strs(t, pipe, "receivers"),
		"processors": strs(t, pipe, "processors"),
		"exporters":  strs(t, pipe, "exporters"),
		"extensions": strs(t, cfg, "service", "extensions"),
	} {
		defined := keys(t, cfg, kind)
		for _, u := range used {
			if !slices.Contains(defined, u) {
				t.Errorf("the pipeline uses %s %q, which is not defined (%v)", kind, u, defined)
			}
		}
	}

	b, err := os.ReadFile(filepath.Join(repoRoot, "collector-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, line := range []string{pipelineExporters, debugExporters} {
		if n := strings.Count(text, line); n != 1 {
			t.Errorf("collector-config.yaml holds %q %d times, want once (the debug switch)", line, n)
		}
	}
	// Every variable has a default, so the file works with no environment.
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		if !strings.HasPrefix(m[1], "env:") || !strings.Contains(m[1], ":-") {
			t.Errorf("%s: want ${env:NAME:-default}", m[0])
		}
	}
}

func TestDockerCompose(t *testing.T) {
	dc := readYAML(t, "docker-compose.yml")
	services := keys(t, dc, "services")
	if want := []string{"grafana", "jaeger", "jobs", "mongo", "otel-collector", "tempo"}; !slices.Equal(services, want) {
		t.Errorf("services %v, want %v", services, want)
	}
	isService := func(host string) bool { return slices.Contains(services, host) }

	for _, s := range services {
		svc := at(t, dc, "services", s)
		if img, ok := svc.(map[string]any)["image"].(string); ok {
			if !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
				t.Errorf("service %s: image %q is not pinned", s, img)
			}
		}
		if vols, ok := svc.(map[string]any)["volumes"].([]any); ok {
			for _, v := range vols {
				src, _, _ := strings.Cut(fmt.Sprint(v), ":")
				if strings.HasPrefix(src, ".") {
					if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
						t.Errorf("service %s mounts %s: %v", s, src, err)
					}
				}
			}
		}
		if deps, ok := svc.(map[string]any)["depends_on"]; ok {
			var names []string
			switch d := deps.(type) {
			case []any:
				for _, n := range d {
					names = append(names, fmt.Sprint(n))
				}
			case map[string]any:
				for n := range d {
					names = append(names, n)
				}
			}
			for _, n := range names {
				if !isService(n) {
					t.Errorf("service %s depends on %q, not a service", s, n)
				}
			}
		}
	}

	if img := str(t, dc, "services", "otel-collector", "image"); !strings.HasPrefix(img, "otel/opentelemetry-collector-contrib:") {
		t.Errorf("otel-collector image %q", img)
	}
	var cfgPath string
	for _, a := range strs(t, dc, "services", "otel-collector", "command") {
		if p, ok := strings.CutPrefix(a, "--config="); ok {
			cfgPath = p
		}
	}
	mounted := false
	for _, v := range strs(t, dc, "services", "otel-collector", "volumes") {
		if strings.HasPrefix(v, "./collector-config.yaml:"+cfgPath) {
			mounted = true
		}
	}
	if cfgPath == "" || !mounted {
		t.Errorf("otel-collector does not run the mounted ./collector-config.yaml (--config=%q)", cfgPath)
	}
	for _, k := range []string{"JAEGER_OTLP_ENDPOINT", "TEMPO_OTLP_ENDPOINT"} {
		host, _, err := net.SplitHostPort(str(t, dc, "services", "otel-collector", "environment", k))
		if err != nil || !isService(host) {
			t.Errorf("otel-collector %s: %q is not a compose service (%v)", k, host, err)
		}
	}

	if got := str(t, dc, "services", "jobs", "build", "dockerfile"); got != "examples/jobs/Dockerfile" {
		t.Errorf("jobs dockerfile %q", got)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, str(t, dc, "services", "jobs", "build", "context"), "examples/jobs/Dockerfile")); err != nil {
		t.Error(err)
	}
	for k, v := range map[string]string{
		"OTELOP_STORE":                "mongodb://mongo:27017/otelop",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4317",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_SERVICE_NAME":           "otelop-jobs-example",
	} {
		if got := str(t, dc, "services", "jobs", "environment", k); got != v {
			t.Errorf("jobs %s = %q, want %q", k, got, v)
		}
	}

	for svc, port := range map[string]string{"jaeger": "16686", "grafana": "3000", "otel-collector": "4317"} {
		if ports := strs(t, dc, "services", svc, "ports"); !slices.Contains(ports, port+":"+port) {
			t.Errorf("%s does not publish %s: %v", svc, port, ports)
		}
	}

	// Grafana's data sources point at compose services.
	ds := readYAML(t, "deploy/grafana/datasources.yaml")
	types := map[string]string{}
	for _, d := range at(t, ds, "datasources").([]any) {
		types[str(t, d, "type")] = str(t, d, "url")
	}
	for typ, url := range map[string]string{"tempo": "http://tempo:3200", "jaeger": "http://jaeger:16686"} {
		if types[typ] != url {
			t.Errorf("grafana %s data source url %q, want %q", typ, types[typ], url)
		}
	}

	// Tempo receives OTLP/gRPC on the port the collector sends to.
	tempo := readYAML(t, "deploy/tempo.yaml")
	if got := str(t, tempo, "distributor", "receivers", "otlp", "protocols", "grpc", "endpoint"); got != "0.0.0.0:4317" {
		t.Errorf("tempo OTLP/gRPC endpoint %q", got)
	}
	if got := fmt.Sprint(at(t, tempo, "server", "http_listen_port")); got != "3200" {
		t.Errorf("tempo http_listen_port %s, want 3200 (the grafana data source)", got)
	}

	df, err := os.ReadFile(filepath.Join(repoRoot, "examples/jobs/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" AS build", "COPY --from=build", "./examples/jobs", "CGO_ENABLED=0", "ENTRYPOINT"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("examples/jobs/Dockerfile lacks %q", want)
		}
	}
}
