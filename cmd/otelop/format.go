package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otelop/otelop/taskrun"
)

func writeJSONLines(w io.Writer, runs []taskrun.TaskRun) error {
	enc := json.NewEncoder(w)
	for i := range runs {
		if err := enc.Encode(&runs[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeTable prints runs as an aligned table.
func writeTable(w io.Writer, runs []taskrun.TaskRun, loc *time.Location) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "no TaskRuns match")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tID\tOPERATION\tSTATUS\tACTOR\tDURATION\tREFS\tERROR")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.StartedAt.In(loc).Format("2006-01-02 15:04:05"), r.ID, r.OperationName, r.Status,
			actor(r), duration(r), orDash(truncate(refs(r), 50)), orDash(truncate(errorText(r), 60)))
	}
	tw.Flush()
}

func tailLine(r taskrun.TaskRun, loc *time.Location) string {
	at := r.StartedAt
	if r.FinishedAt != nil {
		at = *r.FinishedAt
	}
	line := fmt.Sprintf("%s  %-8s %s  %s  by %s", at.In(loc).Format("15:04:05.000"), r.Status, r.OperationName, r.ID, actor(r))
	if r.Status.Final() {
		line += "  " + duration(r)
	}
	if e := errorText(r); e != "" {
		line += "  " + truncate(e, 80)
	}
	return line
}

// writeRun prints one run in full.
func writeRun(w io.Writer, r taskrun.TaskRun, loc *time.Location, traceTemplate string) {
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-14s %s\n", k+":", v)
		}
	}
	kv("id", r.ID)
	kv("operation", r.OperationName)
	kv("category", r.Category)
	kv("stage", r.Stage)
	if len(r.Tags) > 0 {
		kv("tags", strings.Join(r.Tags, ", "))
	}
	kv("status", string(r.Status))
	kv("actor", actor(r))
	var flags []string
	for _, f := range []string{"dry_run", "test_mode", "verbose"} {
		if v, _ := r.Metadata[f].(bool); v {
			flags = append(flags, f)
		}
	}
	kv("flags", strings.Join(flags, ", "))
	kv("idempotency", r.IdempotencyKey)
	kv("started", r.StartedAt.In(loc).Format(time.RFC3339Nano))
	if r.FinishedAt != nil {
		kv("finished", r.FinishedAt.In(loc).Format(time.RFC3339Nano))
		kv("duration", duration(r))
	}
	if r.Orchestrated {
		kv("orchestrator", r.Orchestrator)
		kv("flow run", r.OrchestratorFlowRunID)
		kv("task run", r.OrchestratorTaskRunID)
	}
	kv("service", r.ServiceName)
	if r.TraceID != "" {
		kv("trace", r.TraceID)
		kv("trace link", strings.ReplaceAll(traceTemplate, "{trace_id}", r.TraceID))
		kv("span", r.SpanID)
		kv("parent span", r.ParentSpanID)
	}
	if len(r.InputDump) > 0 {
		fmt.Fprintln(w, "input:")
		fmt.Fprintln(w, indent(prettyJSON(r.InputDump), "  "))
	}
	if len(r.ResultRefs) > 0 {
		fmt.Fprintln(w, "result refs:")
		for _, ref := range r.ResultRefs {
			fmt.Fprintf(w, "  %s\n", ref)
		}
	}
	if r.Status == taskrun.StatusFailed || r.ErrorMessage != "" {
		kv("error type", r.ErrorType)
		kv("error", r.ErrorMessage)
	}
	if len(r.ErrorList) > 0 {
		fmt.Fprintln(w, "item errors:")
		for _, e := range r.ErrorList {
			fmt.Fprintf(w, "  %s: %s\n", e.Item, e.Error)
		}
	}
	if r.ErrorTraceback != "" {
		fmt.Fprintln(w, "traceback:")
		fmt.Fprintln(w, indent(strings.TrimRight(r.ErrorTraceback, "\n"), "  "))
	}
	if len(r.LogEntries) > 0 {
		fmt.Fprintln(w, "log entries:")
		for _, e := range r.LogEntries {
			fmt.Fprintf(w, "  %s %-5s %s%s\n", e.Time.In(loc).Format("15:04:05.000"), e.Level, e.Message, formatAttrs(e.Attributes))
		}
	}
	var meta []string
	for k, v := range r.Metadata {
		switch k {
		case "dry_run", "test_mode", "verbose":
			continue
		}
		meta = append(meta, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(meta)
	if len(meta) > 0 {
		kv("metadata", strings.Join(meta, " "))
	}
	kv("logs", r.LogsRef)
}

func formatAttrs(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, m[k])
	}
	return b.String()
}

func prettyJSON(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func actor(r taskrun.TaskRun) string {
	return orDash(r.Actor.UserID) + "/" + orDash(r.Actor.Channel)
}

func duration(r taskrun.TaskRun) string {
	if r.FinishedAt == nil {
		return "-"
	}
	d := time.Duration(r.DurationMS * float64(time.Millisecond))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func refs(r taskrun.TaskRun) string {
	s := make([]string, len(r.ResultRefs))
	for i, ref := range r.ResultRefs {
		s[i] = ref.String()
	}
	return strings.Join(s, " ")
}

func errorText(r taskrun.TaskRun) string {
	t := r.ErrorMessage
	if r.ErrorType != "" && t != "" {
		t = r.ErrorType + ": " + t
	}
	if n := len(r.ErrorList); n > 0 {
		t = strings.TrimSpace(fmt.Sprintf("%s (%d item errors)", t, n))
	}
	return t
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
