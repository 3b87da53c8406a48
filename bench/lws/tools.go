//go:build tools

// Package tools pins the LeaderWorkerSet controller that bench:operator runs beside Tandem's
// operator. Its own module: LWS requires the Kubernetes libraries at versions of its choosing.
package tools

import _ "sigs.k8s.io/lws/cmd"
