//go:build !linux

package sysprep

import "io"

// IsTerminal reports false: colour detection is only implemented on Linux.
func IsTerminal(io.Writer) bool { return false }
