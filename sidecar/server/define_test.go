package server

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
)

func TestBadInputKeepsServing(t *testing.T) {
	r := start(t, Config{})
	ctx := context.Background()
	c := v1alpha3.NewCallbacksClient(r.conn)
	cases := []struct {
		name string
		dom  []byte
		vmi  []byte
		code codes.Code
		want []string
	}{
		{"malformed XML", []byte("<domain><devices"), testVMI(t, "dpdk0"), codes.InvalidArgument, []string{"ns1/vmi1", "parse domain XML"}},
		{"malformed VMI JSON", testDomain(t), []byte(`{"metadata":`), codes.InvalidArgument, []string{"parse VMI JSON"}},
		{"empty request", nil, nil, codes.InvalidArgument, []string{"parse VMI JSON"}},
		{"private memory", bytes.Replace(testDomain(t), []byte("<os>"), []byte(`<memoryBacking><access mode="private"/></memoryBacking><os>`), 1),
			testVMI(t, "dpdk0"), codes.FailedPrecondition, []string{"ns1/vmi1", "private"}},
	}
	for _, tc := range cases {
		_, err := c.OnDefineDomain(ctx, &v1alpha3.OnDefineDomainParams{DomainXML: tc.dom, Vmi: tc.vmi})
		st, _ := status.FromError(err)
		if st.Code() != tc.code {
			t.Errorf("%s: code %s, want %s (%v)", tc.name, st.Code(), tc.code, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(st.Message(), w) {
				t.Errorf("%s: message %q lacks %q", tc.name, st.Message(), w)
			}
		}
	}
	// Still serving.
	if _, err := c.OnDefineDomain(ctx, &v1alpha3.OnDefineDomainParams{DomainXML: testDomain(t), Vmi: testVMI(t, "dpdk0")}); err != nil {
		t.Fatalf("server broken after bad input: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	r := start(t, Config{})
	c := v1alpha3.NewCallbacksClient(r.conn)
	dom := testDomain(t)
	want, err := c.OnDefineDomain(context.Background(), &v1alpha3.OnDefineDomainParams{DomainXML: dom, Vmi: testVMI(t, "a", "b")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			vmi := testVMI(t, "a", "b")
			if i%4 == 3 {
				vmi = []byte("not json") // errors interleaved with successes
			}
			res, err := c.OnDefineDomain(context.Background(), &v1alpha3.OnDefineDomainParams{DomainXML: dom, Vmi: vmi})
			switch {
			case i%4 == 3 && status.Code(err) != codes.InvalidArgument:
				errs <- err
			case i%4 != 3 && err != nil:
				errs <- err
			case i%4 != 3 && !bytes.Equal(res.GetDomainXML(), want.GetDomainXML()):
				errs <- io.ErrShortWrite
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
}

func TestNetworkInfoMTU(t *testing.T) {
	dir := shortDir(t)
	ni := filepath.Join(dir, "network-info")
	if err := os.WriteFile(ni, []byte(`{"interfaces":[{"network":"dpdk0","mtu":9000,"deviceInfo":{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"client","path":"/elsewhere/vhost.sock"}}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := start(t, Config{SocketPath: filepath.Join(dir, "s.sock"), NetworkInfoPath: ni})
	res, err := v1alpha3.NewCallbacksClient(r.conn).OnDefineDomain(context.Background(), &v1alpha3.OnDefineDomainParams{DomainXML: testDomain(t), Vmi: testVMI(t, "dpdk0")})
	if err != nil {
		t.Fatal(err)
	}
	out := res.GetDomainXML()
	if !bytes.Contains(out, []byte(`<mtu size="9000">`)) {
		t.Errorf("no MTU 9000 in\n%s", out)
	}
	if bytes.Contains(out, []byte("/elsewhere")) || !bytes.Contains(out, []byte(wantSocket(t, "dpdk0"))) {
		t.Errorf("the contract path must win over device-info:\n%s", out)
	}
}

func TestNetworkInfoRequiredButMissing(t *testing.T) {
	r := start(t, Config{NetworkInfoWait: 200 * time.Millisecond})
	_, err := v1alpha3.NewCallbacksClient(r.conn).OnDefineDomain(context.Background(), &v1alpha3.OnDefineDomainParams{DomainXML: testDomain(t), Vmi: testVMI(t, "dpdk0")})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "did not appear") {
		t.Fatalf("err = %v", err)
	}
}
