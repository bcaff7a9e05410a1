//go:build !linux

package arrival

import "net"

// stamped: only Linux's stamps are read here; elsewhere the caller keeps its own clock.
func stamped(*net.TCPConn) *Conn { return nil }

func (c *Conn) readStamped(p []byte) (int, error) { return c.TCPConn.Read(p) }
