// Package events tells a VM's owner, through Kubernetes Events on the
// virt-launcher pod and its VMI, when a port of ours goes wrong or
// recovers: OVS reports an error on it, it is still not connected a while
// after ADD (QEMU never listened on the socket, or on another path), or it
// lost its vhost-user connection while the VM should be running.
//
// detector.go decides, from the OVSDB snapshot and the pod and VMI caches,
// which transitions deserve an event: one per transition, never one per
// look, and none for pods that are going away (a VM that stops, a source
// pod after live migration). messages.go words them. recorder.go sends
// them through client-go's event broadcaster (aggregation, spam filter,
// retries) and run.go drives the detector on every OVSDB change and on its
// deadlines.
package events
