//go:build tools

// Package tools pins KEDA's operator, built for the k8s tier's test of a ScaledObject driving an
// InferenceService from zero and back. Its own module: KEDA requires the Kubernetes libraries at
// versions of its choosing.
package tools

import _ "github.com/kedacore/keda/v2/cmd/operator"
