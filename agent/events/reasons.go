package events

// Event reasons, as `kubectl get events --field-selector reason=...` finds
// them. Warnings name a broken port; the Normal ones close a warning (or
// say a port came up).
const (
	// ReasonConnected (Normal): QEMU serves the socket and OVS connected,
	// the first time or again after a warning.
	ReasonConnected = "VhostUserConnected"
	// ReasonNotConnected (Warning): the port exists but OVS has not
	// connected to QEMU's socket NotConnectedAfter after it appeared.
	ReasonNotConnected = "VhostUserNotConnected"
	// ReasonDisconnected (Warning): the connection was up and has stayed
	// down for DisconnectedAfter while the VM should be running.
	ReasonDisconnected = "VhostUserDisconnected"
	// ReasonPortError (Warning): the Interface row's error column is set.
	ReasonPortError = "VhostUserPortError"
	// ReasonPortErrorCleared (Normal): the error column was cleared.
	ReasonPortErrorCleared = "VhostUserPortErrorCleared"
)

// Event types, as core/v1 spells them.
const (
	TypeNormal  = "Normal"
	TypeWarning = "Warning"
)
