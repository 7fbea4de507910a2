// Package pods is the node agent's view of the Kubernetes API: the pods on
// its node (a metadata-only informer with a spec.nodeName field selector,
// so memory is bounded by the node's pods, not the cluster's) and the
// VirtualMachineInstances KubeVirt runs there (a dynamic informer with
// KubeVirt's kubevirt.io/nodeName label selector), reduced to the few fields
// the agent reads.
//
// It answers three questions: does the pod a port of ours was made for
// still exist (reconciliation, from the cache and, for a second look, from
// a fresh list), which VMI and which of its networks a pod interface is
// (metric labels), and what to attach an Event to.
package pods
