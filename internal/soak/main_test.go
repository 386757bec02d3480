package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestShortSoak holds 2,000 calls/s for two seconds into SQLite: the
// program measures, and no run is lost.
func TestShortSoak(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), config{duration: 2 * time.Second, warmup: 500 * time.Millisecond, interval: 500 * time.Millisecond,
		rate: 2000, maxGrowth: 1000}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if s := out.String(); !strings.Contains(s, "dropped 0, failed 0") || !strings.Contains(s, "RSS after warm-up") {
		t.Errorf("report:\n%s", s)
	}
}
