package otelop

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelop/otelop/internal/attrs"
)

// Log records a log entry on the operation call in ctx: it becomes a span
// event and an entry of the TaskRun's log_entries. args are slog-style
// key/value pairs or slog.Attr values. Outside a recording span Log does
// nothing; to also write to a logger, log through slog with [SlogHandler].
func Log(ctx context.Context, level slog.Level, msg string, args ...any) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.Add(args...)
	addLogEvent(span, r, nil, "")
}

func addLogEvent(span trace.Span, r slog.Record, groupAttrs []slog.Attr, group string) {
	kv := make([]attribute.KeyValue, 0, 1+r.NumAttrs()+len(groupAttrs))
	kv = append(kv, attrs.LogLevel.String(r.Level.String()))
	for _, a := range groupAttrs {
		kv = appendSlogAttr(kv, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		kv = appendSlogAttr(kv, group, a)
		return true
	})
	opts := []trace.EventOption{trace.WithAttributes(kv...)}
	if !r.Time.IsZero() {
		opts = append(opts, trace.WithTimestamp(r.Time))
	}
	span.AddEvent(r.Message, opts...)
}

func appendSlogAttr(kv []attribute.KeyValue, prefix string, a slog.Attr) []attribute.KeyValue {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return kv
	}
	key := a.Key
	if prefix != "" {
		key = prefix + "." + key
	}
	v := a.Value
	if v.Kind() != slog.KindGroup && redactConf.Load().matches(a.Key) {
		return append(kv, attribute.String(key, Redacted))
	}
	switch v.Kind() {
	case slog.KindGroup:
		p := key
		if a.Key == "" {
			p = prefix
		}
		for _, g := range v.Group() {
			kv = appendSlogAttr(kv, p, g)
		}
		return kv
	case slog.KindBool:
		return append(kv, attribute.Bool(key, v.Bool()))
	case slog.KindInt64:
		return append(kv, attribute.Int64(key, v.Int64()))
	case slog.KindUint64:
		return append(kv, attribute.Int64(key, int64(v.Uint64())))
	case slog.KindFloat64:
		return append(kv, attribute.Float64(key, v.Float64()))
	case slog.KindString:
		return append(kv, attribute.String(key, v.String()))
	case slog.KindDuration:
		return append(kv, attribute.String(key, v.Duration().String()))
	case slog.KindTime:
		return append(kv, attribute.String(key, v.Time().Format(time.RFC3339Nano)))
	default:
		if err, ok := v.Any().(error); ok {
			return append(kv, attribute.String(key, err.Error()))
		}
		return append(kv, attribute.String(key, v.String()))
	}
}

// SlogHandler wraps next so that slog records logged with a context inside
// an operation call also land in the TaskRun's log_entries (as span events),
// and every record logged inside a span carries trace_id and span_id. Records
// are passed on to next when next is enabled for their level; a record below
// next's level is still recorded on the span.
func SlogHandler(next slog.Handler) slog.Handler {
	return &slogHandler{next: next}
}

type slogHandler struct {
	next  slog.Handler
	attrs []slog.Attr // WithAttrs before any group, recorded on the span
	group string      // dotted group prefix for the span attributes
}

func (h *slogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l) || trace.SpanFromContext(ctx).IsRecording()
}

func (h *slogHandler) Handle(ctx context.Context, r slog.Record) error {
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		addLogEvent(span, r, h.attrs, h.group)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	if sc := span.SpanContext(); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

func (h *slogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	if h.group == "" {
		c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	} else {
		for _, a := range as {
			c.attrs = append(append([]slog.Attr(nil), c.attrs...), slog.Attr{Key: h.group + "." + a.Key, Value: a.Value})
		}
	}
	return &c
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	if h.group == "" {
		c.group = name
	} else {
		c.group = h.group + "." + name
	}
	return &c
}
