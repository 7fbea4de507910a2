// Package compat holds the KubeVirt compatibility tests of the sidecar: the
// domain comes from KubeVirt's converter, and KubeVirt's hooks manager drives
// our sidecar binary as virt-launcher does. Everything is in the tests.
package compat
