package config

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// Args are the CNI_ARGS the plugin reads (Multus passes them).
type Args struct {
	types.CommonArgs
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_UID                types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive // CNI_ARGS key
}

// ParseArgs decodes CNI_ARGS, ignoring keys it does not know.
func ParseArgs(s string) (*Args, error) {
	a := &Args{}
	a.IgnoreUnknown = true
	if err := types.LoadArgs(s, a); err != nil {
		return nil, fmt.Errorf("parse CNI_ARGS: %w", err)
	}
	return a, nil
}
