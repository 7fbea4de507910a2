// Package version carries the build version, set by the Makefile through -ldflags.
package version

// Version is the project version the binaries report.
var Version = "dev"
