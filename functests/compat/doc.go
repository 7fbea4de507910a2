// Package compat drives our sidecar with KubeVirt's own converter and hooks manager.
package compat

import (
	_ "github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
	_ "kubevirt.io/kubevirt/pkg/hooks"
	_ "kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/converter"
)
