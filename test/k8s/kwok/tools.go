//go:build tools

// Package tools pins KWOK, which simulates nodes and pod lifecycles for the test control plane.
// Its own module: KWOK requires the Kubernetes libraries at versions of its choosing.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
