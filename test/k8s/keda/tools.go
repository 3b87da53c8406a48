//go:build tools

// Package tools pins KEDA's operator and metrics adapter, built for the k8s tier's tests of a
// ScaledObject driving an InferenceService: from zero and back, and (the adapter serving the HPA
// its external metric) to counts above one. Its own module: KEDA requires the Kubernetes libraries at
// versions of its choosing.
package tools

import (
	_ "github.com/kedacore/keda/v2/cmd/adapter"
	_ "github.com/kedacore/keda/v2/cmd/operator"
)
