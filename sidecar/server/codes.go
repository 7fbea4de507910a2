package server

import (
	"google.golang.org/grpc/codes"

	"github.com/kubevirt-vhostuser/vhostuser/sidecar/domain"
)

// rewriteCode is the gRPC code of a domain.Rewrite error: a bad request is
// InvalidArgument, a domain we cannot work with FailedPrecondition, anything
// else Internal.
func rewriteCode(err error) codes.Code {
	switch domain.KindOf(err) {
	case domain.Invalid:
		return codes.InvalidArgument
	case domain.Conflict:
		return codes.FailedPrecondition
	}
	return codes.Internal
}
