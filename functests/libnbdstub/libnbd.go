// Package libnbd is a stand-in for the Go bindings of libnbd
// (libguestfs.org/libnbd), which KubeVirt's virt-launcher imports for its
// backup path only and which the Go module proxy does not serve. The
// functests module builds virt-launcher against this package through a
// replace directive. Every call fails: the tests never take a backup.
//
// Only the API virt-launcher v1.8.4 uses is declared; the constants carry
// the values of the NBD protocol (base:allocation and qemu:dirty-bitmap
// metadata contexts and their extent flags).
package libnbd

import "errors"

// Metadata contexts of the NBD protocol.
const (
	CONTEXT_BASE_ALLOCATION   = "base:allocation"
	CONTEXT_QEMU_DIRTY_BITMAP = "qemu:dirty-bitmap:"
)

// Extent flags of the NBD protocol.
const (
	STATE_HOLE  = uint32(1)
	STATE_ZERO  = uint32(2)
	STATE_DIRTY = uint32(1)
)

// errStub is returned by every call.
var errStub = errors.New("libnbd is not available: virt-launcher was built with the functests stub")

// LibnbdExtent is one extent reported by BlockStatus64.
type LibnbdExtent struct {
	Length uint64
	Flags  uint64
}

// ExtentCallback64 receives the extents of one BlockStatus64 reply.
type ExtentCallback64 func(metacontext string, offset uint64, entries []LibnbdExtent, err *int) int

// BlockStatus64Optargs are BlockStatus64's optional arguments.
type BlockStatus64Optargs struct{}

// PreadOptargs are Pread's optional arguments.
type PreadOptargs struct{}

// Libnbd is an NBD client handle.
type Libnbd struct{}

// Create fails: there is no NBD client in this build.
func Create() (*Libnbd, error) { return nil, errStub }

// Close does nothing.
func (h *Libnbd) Close() error { return nil }

// AddMetaContext fails.
func (h *Libnbd) AddMetaContext(name string) error { return errStub }

// CanMetaContext fails.
func (h *Libnbd) CanMetaContext(name string) (bool, error) { return false, errStub }

// GetSize fails.
func (h *Libnbd) GetSize() (uint64, error) { return 0, errStub }

// SetExportName fails.
func (h *Libnbd) SetExportName(name string) error { return errStub }

// ConnectUnix fails.
func (h *Libnbd) ConnectUnix(path string) error { return errStub }

// Pread fails.
func (h *Libnbd) Pread(buf []byte, offset uint64, optargs *PreadOptargs) error { return errStub }

// BlockStatus64 fails.
func (h *Libnbd) BlockStatus64(count, offset uint64, cb ExtentCallback64, optargs *BlockStatus64Optargs) error {
	return errStub
}
