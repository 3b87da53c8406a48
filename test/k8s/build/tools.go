//go:build tools

// Package tools pins the upstream commands the test control plane is built from: Kubernetes'
// API server, controller manager and scheduler, and etcd, all at the versions go.mod requires.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
