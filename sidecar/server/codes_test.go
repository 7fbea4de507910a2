package server

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/kubevirt-vhostuser/vhostuser/sidecar/domain"
)

func TestRewriteCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{&domain.Error{Kind: domain.Invalid, Msg: "bad VMI"}, codes.InvalidArgument},
		{fmt.Errorf("wrapped: %w", &domain.Error{Kind: domain.Conflict, Msg: "private memory"}), codes.FailedPrecondition},
		{errors.New("no kind"), codes.Internal},
	} {
		if got := rewriteCode(tc.err); got != tc.want {
			t.Errorf("rewriteCode(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
