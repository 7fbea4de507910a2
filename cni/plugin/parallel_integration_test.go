//go:build integration

package plugin_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

func TestParallel(t *testing.T) {
	f := newFixture(t)
	const n = 50
	atts := make([]att, n)
	for i := range atts {
		atts[i] = att{fmt.Sprintf("par%02d", i), "net1", fmt.Sprintf("pod-%02d", i)}
		f.newPod(atts[i].uid)
	}
	run := func(op func(att) error) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, a := range atts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := op(a); err != nil {
					errs <- fmt.Errorf("%s: %w", a.containerID, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	run(func(a att) error { _, err := f.add("1.1.0", a); return err })
	if got := len(f.portNames()); got != n {
		t.Fatalf("%d ports after %d parallel ADDs", got, n)
	}
	f.assertAllAttached(atts)
	run(func(a att) error { return f.del("1.1.0", a) })
	if got := len(f.portNames()); got != 0 {
		t.Fatalf("%d ports left after parallel DELs", got)
	}
	f.assertAllDetached(atts)
	if ents := f.shortEntries(); len(ents) != 0 {
		t.Fatalf("short links left: %v", ents)
	}
}

// TestParallelCreateBridge: concurrent ADDs racing to create the same missing
// bridge all succeed (the losers retry on the unique-name conflict).
func TestParallelCreateBridge(t *testing.T) {
	f := newFixture(t)
	f.bridge = fmt.Sprintf("brnew%d", bridgeSeq.Add(1))
	t.Cleanup(func() { _, _ = ovs.Vsctl(context.Background(), "--if-exists", "del-br", f.bridge) })
	f.extra["createBridge"] = true
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	atts := make([]att, n)
	for i := range atts {
		atts[i] = att{fmt.Sprintf("cb%02d", i), "net1", fmt.Sprintf("cb-pod-%02d", i)}
		f.newPod(atts[i].uid)
	}
	for _, a := range atts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.add("1.1.0", a); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if got := f.vsctl("--bare", "--columns=name", "find", "Bridge", "name="+f.bridge); got != f.bridge {
		t.Fatalf("bridge %q", got)
	}
	if got := len(f.portNames()); got != n {
		t.Fatalf("%d ports, want %d", got, n)
	}
	f.assertAllAttached(atts)
	for _, a := range atts {
		if err := f.del("1.1.0", a); err != nil {
			t.Fatal(err)
		}
	}
	f.assertAllDetached(atts)
}
