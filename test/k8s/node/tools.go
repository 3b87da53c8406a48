//go:build tools

// Package tools pins the kubelet and kube-proxy of the test cluster's real node, and kubectl, at the control plane's version
// (go.mod's replace block points Kubernetes' staging modules at their published versions).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
