package taskrun_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

type hugeOut struct {
	IDs  []string `json:"ids" otelop:"ref=things"`
	errs []otelop.ItemError
}

func (o hugeOut) ItemErrors() []otelop.ItemError { return o.errs }

// TestLimits makes a call whose every part is oversized and checks that its
// TaskRun stays within the limits and under MongoDB's 16 MiB.
func TestLimits(t *testing.T) {
	h := taskruntest.New(t)
	type in struct {
		Blob string `json:"blob"`
	}
	op := otelop.Define(otelop.Spec{Name: "huge", Description: "d", Category: "c", Observed: true},
		func(ctx context.Context, _ in) (hugeOut, error) {
			var out hugeOut
			for i := range 500 {
				args := []any{"big", strings.Repeat("v", 100<<10)}
				for j := range 50 {
					args = append(args, fmt.Sprintf("k%d", j), j)
				}
				otelop.Log(ctx, slog.LevelInfo, fmt.Sprintf("entry %d %s", i, strings.Repeat("m", 50<<10)), args...)
			}
			for i := range 20000 {
				out.IDs = append(out.IDs, fmt.Sprintf("thing-%d-%s", i, strings.Repeat("x", 200)))
			}
			for i := range 5000 {
				out.errs = append(out.errs, otelop.ItemError{Item: strings.Repeat("i", 10<<10), Error: fmt.Sprint(i)})
			}
			return out, errors.New(strings.Repeat("error ", 1<<20))
		}, h.Options()...)
	if _, err := op.Call(context.Background(), in{Blob: strings.Repeat("b", 10<<20)}); err == nil {
		t.Fatal("no error")
	}
	h.Flush()
	run := h.Runs()[0]
	for _, c := range []struct {
		what      string
		got, max  int
		wantExact bool
	}{
		{"input_dump bytes", len(run.InputDump), otelop.DefaultInputLimit, false},
		{"error_message bytes", len(run.ErrorMessage), taskrun.MaxErrorMessage, true},
		{"result_refs", len(run.ResultRefs), taskrun.MaxResultRefs, true},
		{"error_list", len(run.ErrorList), taskrun.MaxItemErrors, true},
		{"log_entries", len(run.LogEntries), taskrun.MaxLogEntries, true},
		{"error_list[0].item bytes", len(run.ErrorList[0].Item), taskrun.MaxItemErrorBytes, false},
		{"log message bytes", len(run.LogEntries[0].Message), taskrun.MaxLogMessage, false},
		{"log attributes", len(run.LogEntries[0].Attributes), taskrun.MaxLogAttributes, true},
	} {
		if c.got > c.max || (c.wantExact && c.got != c.max) {
			t.Errorf("%s = %d, limit %d", c.what, c.got, c.max)
		}
	}
	if s, _ := run.LogEntries[0].Attributes["big"].(string); len(s) > taskrun.MaxValueBytes {
		t.Errorf("log attribute of %d bytes", len(s))
	}
	if run.Metadata["input_truncated"] != true || fmt.Sprint(run.Metadata["result_refs_dropped"]) != "10000" ||
		fmt.Sprint(run.Metadata["error_list_dropped"]) != "4000" || fmt.Sprint(run.Metadata["log_entries_dropped"]) != "400" {
		t.Errorf("metadata = %v", run.Metadata)
	}
	if !strings.Contains(run.ErrorMessage, "bytes cut]") {
		t.Errorf("the cut is not marked: ...%s", run.ErrorMessage[len(run.ErrorMessage)-40:])
	}
	doc, err := bson.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc) >= 16<<20 {
		t.Errorf("BSON document of %d bytes", len(doc))
	}
	t.Logf("oversized call stored as a %d KiB document", len(doc)>>10)
}
