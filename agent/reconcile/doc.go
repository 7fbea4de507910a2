// Package reconcile is the node agent's leak reconciliation: it removes the
// OVS ports, short links, temporary link names and socket directories that
// pods which no longer exist left behind (a DEL that never came: kubelet
// restarted, the node rebooted, the CNI plugin was killed).
//
// CNI GC (cni/plugin/gc.go) is the conservative counterpart: it knows only
// the attachments the runtime still holds. The reconciler asks the
// Kubernetes API instead, so it can be more aggressive, and it pays for that
// with these safety rules, whose goal is that it never removes a port of a
// pod that exists, nor anything that is not ours:
//
//   - Nothing destructive happens unless the pod informer has synced and the
//     OVSDB monitor is connected with its state read. A pass that cannot
//     trust its view also forgets every suspect, so the grace period always
//     elapses under a trustworthy view.
//   - A candidate is a port of ours (owner mark) with a pod UID the informer
//     does not hold, or a short link named like ours whose target, a socket
//     directory under <kubeletRoot>/pods/<uid>/volumes/, names such a pod. A
//     port without a pod UID mark is never a candidate.
//   - A candidate must look orphaned continuously for Grace (default 30 s);
//     seen cached again, it is forgotten. This rides out informer lag and a
//     pod that is being created (ADD runs before the pod reaches the cache).
//   - Due candidates then get a second look: one fresh quorum list of this
//     node's pods (Pods.Live). If that list fails (API unreachable), nothing
//     is removed in that pass. A candidate the list shows alive is kept and
//     waits a full grace period again.
//   - The executor re-reads the ports from OVSDB by their marks (owner, pod
//     UID, ifname) and deletes only rows still carrying our owner mark and
//     that pod UID: the monitor's copy may be stale. Files are removed with
//     cni/sockdir, which removes a link only when it points at the
//     attachment's own socket directory and a socket directory only when
//     nothing but the socket is inside; anything else is ErrNotOurs, reported
//     and left in place.
//   - Temporary link names (a killed ADD) are removed once their lstat mtime
//     is older than Grace; dangling short links (their target is gone) are
//     removed on every trusted pass: nothing can use them.
//
// Passes run every Interval and after OVSDB changes (debounced by Debounce),
// one at a time. Every removal is logged and handed to the Notifier, and the
// Reconciler is a prometheus.Collector of its passes, removals, errors and
// waiting suspects.
//
// Files: planner.go is the pure decision (grace, second look), executor.go
// the removals, reconciler.go the loop, metrics.go the collector.
package reconcile
