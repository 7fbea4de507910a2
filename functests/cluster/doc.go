// Package cluster holds the cluster functional tests (see cluster_test.go):
// kubectl and virtctl driven, skipped without KUBECONFIG.
package cluster
