// Package cluster holds the cluster functional tests: kubectl and virtctl
// driven, skipped without KUBECONFIG. cluster_test.go needs a cluster with
// KubeVirt, Multus and OVS-DPDK nodes; the TestLocalCluster* tests
// (local_test.go, vhostuser_test.go) run against the single-node cluster of
// make cluster-up on this machine and also inspect that node (make
// functest-cluster).
package cluster
