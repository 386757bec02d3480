package temporal

import (
	"context"
	"sync"

	"go.temporal.io/sdk/activity"

	"github.com/otelop/otelop/otelop"
)

// Orchestrator is the orchestrator name recorded for Temporal activities.
const Orchestrator = "temporal"

// Detector is an otelop.Detector for Temporal activities. Outside an
// activity it costs one context lookup.
type Detector struct{}

var _ otelop.Detector = Detector{}

// Detect reports the activity that ctx belongs to, if any.
func (Detector) Detect(ctx context.Context) (otelop.Orchestration, bool) {
	if !activity.IsActivity(ctx) { // GetInfo panics outside an activity
		return otelop.Orchestration{}, false
	}
	info := activity.GetInfo(ctx)
	return otelop.Orchestration{
		Orchestrator: Orchestrator,
		FlowRunID:    info.WorkflowExecution.RunID,
		TaskRunID:    info.ActivityID,
		Attempt:      int(info.Attempt),
	}, true
}

var once sync.Once

// Register adds the Detector to otelop's detectors; calling it again does
// nothing.
func Register() {
	once.Do(func() { otelop.RegisterDetector(Detector{}) })
}
