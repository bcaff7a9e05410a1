package arrival

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// stamped turns on the kernel's receive stamps for tc (SO_TIMESTAMPNS); nil when it refuses.
func stamped(tc *net.TCPConn) *Conn {
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return nil
	}
	return &Conn{TCPConn: tc, raw: raw}
}

// oobSize holds one SCM_TIMESTAMPNS message (a timespec) with room to spare.
const oobSize = 64

// readStamped reads with recvmsg, through Go's poller (deadlines hold), and keeps the
// SCM_TIMESTAMPNS stamp that comes with the bytes.
func (c *Conn) readStamped(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var oob [oobSize]byte
	var n, oobn int
	var rerr error
	if err := c.raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), p, oob[:], 0)
		return rerr != syscall.EAGAIN
	}); err != nil {
		return 0, err // a deadline, or the connection closed
	}
	if rerr != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: rerr}
	}
	if n == 0 {
		return 0, io.EOF
	}
	// An unstamped read (stamping not on yet machine-wide) clears the stamp: an earlier read's
	// would date these bytes too early.
	ns, _ := timestampNS(oob[:oobn])
	c.latest.Store(ns)
	return n, nil
}

// timestampNS finds the SCM_TIMESTAMPNS message among a recvmsg's control messages (walked in
// place: syscall.ParseSocketControlMessage allocates for every read).
func timestampNS(oob []byte) (int64, bool) {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < syscall.SizeofCmsghdr || int(h.Len) > len(oob) {
			return 0, false
		}
		data := oob[syscall.CmsgLen(0):h.Len]
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&data[0]))
			return ts.Nano(), true
		}
		next := syscall.CmsgSpace(int(h.Len) - syscall.CmsgLen(0))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return 0, false
}
