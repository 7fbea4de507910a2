package pods

import (
	"context"
	"fmt"
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

var (
	podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	vmisResource = schema.GroupVersionResource{Group: "kubevirt.io", Version: "v1", Resource: "virtualmachineinstances"}
)

// nodeNameLabel is the label KubeVirt keeps on a VMI naming the node it
// runs on (kubevirt.io/api core/v1 NodeNameLabel).
const nodeNameLabel = "kubevirt.io/nodeName"

const byUID = "uid"

// Cache holds this node's pods and VMIs. Its methods are safe for
// concurrent use once Run has started.
type Cache struct {
	node string
	meta metadata.Interface
	pods cache.SharedIndexInformer
	vmis cache.SharedIndexInformer
}

// New builds the informers for node; Run starts them.
func New(cfg *rest.Config, node string) (*Cache, error) {
	if node == "" {
		return nil, fmt.Errorf("pods: empty node name")
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	c := &Cache{node: node, meta: meta}
	uidIndex := cache.Indexers{byUID: func(obj any) ([]string, error) {
		m, err := metaOf(obj)
		if err != nil {
			return nil, err
		}
		return []string{string(m.GetUID())}, nil
	}}
	onNode := fields.OneTermEqualSelector("spec.nodeName", node).String()
	c.pods = cache.NewSharedIndexInformer(listWatch(meta.Resource(podsResource), meta,
		func(o *metav1.ListOptions) { o.FieldSelector = onNode }), &metav1.PartialObjectMetadata{}, 0, uidIndex)
	if err := c.pods.SetTransform(trimPod); err != nil {
		return nil, err
	}
	vmiOnNode := labels.SelectorFromSet(labels.Set{nodeNameLabel: node}).String()
	c.vmis = cache.NewSharedIndexInformer(listWatch(dyn.Resource(vmisResource), dyn,
		func(o *metav1.ListOptions) { o.LabelSelector = vmiOnNode }), &unstructured.Unstructured{}, 0, uidIndex)
	if err := c.vmis.SetTransform(func(obj any) (any, error) {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			return trimVMI(u), nil
		}
		return obj, nil // a tombstone
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// lister is a client of one resource: the metadata and the dynamic
// clients' List differ only in the list type.
type lister[L runtime.Object] interface {
	List(ctx context.Context, o metav1.ListOptions) (L, error)
	Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
}

// listWatch builds a ListerWatcher of r, with tweak applied to every list
// and watch, as client-go's metadatainformer and dynamicinformer do (client
// tells whether watch-list semantics are supported), without their
// packages: they import client-go/informers, which links every typed client
// and API group into the agent (a third of its binary, resident on every
// node).
func listWatch[L runtime.Object](r lister[L], client any, tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return r.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return r.Watch(ctx, o)
		},
	}, client)
}

func metaOf(obj any) (metav1.Object, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("pods: %T has no object metadata", obj)
	}
	return m, nil
}

// trimPod keeps the metadata podFromMeta reads: no labels, annotations or
// managed fields in the cache.
func trimPod(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		OwnerReferences: m.OwnerReferences, DeletionTimestamp: m.DeletionTimestamp,
	}}, nil
}

// Run runs the informers until ctx ends. A cluster without KubeVirt only
// lacks the VMI labels: the pod side, which reconciliation rests on, does
// not wait for it.
func (c *Cache) Run(ctx context.Context, log *slog.Logger) {
	go c.pods.RunWithContext(ctx)
	go c.vmis.RunWithContext(ctx)
	if cache.WaitForCacheSync(ctx.Done(), c.pods.HasSynced) {
		log.Info("pod informer synced", "node", c.node, "pods", len(c.pods.GetStore().ListKeys()))
	}
	<-ctx.Done()
}

// Synced reports whether the pod cache holds a complete list.
func (c *Cache) Synced() bool { return c.pods.HasSynced() }

// VMIsSynced reports whether the VMI cache holds a complete list.
func (c *Cache) VMIsSynced() bool { return c.vmis.HasSynced() }

// Cached reports whether a pod with this UID is in the cache.
func (c *Cache) Cached(uid string) bool {
	_, ok := c.Pod(uid)
	return ok
}

// Pod returns the cached pod with this UID.
func (c *Cache) Pod(uid string) (Pod, bool) {
	objs, err := c.pods.GetIndexer().ByIndex(byUID, uid)
	if err != nil || len(objs) == 0 {
		return Pod{}, false
	}
	m, err := metaOf(objs[0])
	if err != nil {
		return Pod{}, false
	}
	om := metav1.ObjectMeta{UID: m.GetUID(), Namespace: m.GetNamespace(), Name: m.GetName(),
		OwnerReferences: m.GetOwnerReferences(), DeletionTimestamp: m.GetDeletionTimestamp()}
	return podFromMeta(&om), true
}

// VMI returns the cached VMI with this UID.
func (c *Cache) VMI(uid string) (VMI, bool) {
	objs, err := c.vmis.GetIndexer().ByIndex(byUID, uid)
	if err != nil || len(objs) == 0 {
		return VMI{}, false
	}
	u, ok := objs[0].(*unstructured.Unstructured)
	if !ok {
		return VMI{}, false
	}
	return vmiFromUnstructured(u), true
}

// Names returns the VMI name and VMI network name of a pod interface, ""
// for what is not known (not a virt-launcher pod, VMI not cached yet).
func (c *Cache) Names(podUID, podIfName string) (vmi, network string) {
	p, ok := c.Pod(podUID)
	if !ok || p.VMIName == "" {
		return "", ""
	}
	if v, ok := c.VMI(p.VMIUID); ok {
		network = v.Interfaces[podIfName]
	}
	return p.VMIName, network
}

// Live lists the UIDs of this node's pods from the API server now: a
// quorum read (no resourceVersion), never the cache. Reconciliation's second
// look, before it removes anything.
func (c *Cache) Live(ctx context.Context) (map[string]bool, error) {
	uids := map[string]bool{}
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", c.node).String(), Limit: 500}
	for {
		l, err := c.meta.Resource(podsResource).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list pods on node %s: %w", c.node, err)
		}
		for i := range l.Items {
			uids[string(l.Items[i].UID)] = true
		}
		if l.Continue == "" {
			return uids, nil
		}
		opts.Continue = l.Continue
	}
}
