// Package arrival stamps what a client reads with the time the kernel received it.
//
// A load generator stamps each streamed token when its reading goroutine gets to it. On a busy
// client machine (hundreds of streams on two cores) that goroutine waits for a core, and the
// wait lands in the inter-token gaps it reports: at 512 streams paced at 5 ms on two cores the
// ITL p99 read 1.2–1.3× what the server really left between its writes. The kernel stamps
// every segment as it arrives (SO_TIMESTAMPNS on Linux); a connection dialled here reads with
// recvmsg and keeps the stamp of the latest bytes read, so that the time a chunk is recorded
// at is when its bytes reached this machine, not when the client got round to them.
//
// Where the kernel gives no stamp (another OS, a connection not dialled here, a socket option
// refused) Latest reports none and the caller keeps its own clock.
package arrival

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is a TCP connection whose reads record the kernel's receive time of the bytes read.
type Conn struct {
	*net.TCPConn
	raw    syscall.RawConn
	latest atomic.Int64 // Unix ns of the latest read's kernel stamp; 0: none
}

// Read reads as the TCP connection does and records the kernel's stamp of what it read.
func (c *Conn) Read(p []byte) (int, error) { return c.readStamped(p) }

// WriteTo copies through Read: the TCP connection's own WriteTo (splice) would read past the
// stamps.
func (c *Conn) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, struct{ io.Reader }{c}) }

// Latest is the kernel's receive time of the bytes the latest read returned (the last segment
// among them); false before any read, or when the latest read came without a stamp.
func (c *Conn) Latest() (time.Time, bool) {
	ns := c.latest.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// Dialer dials TCP connections that record arrival stamps, for http.Transport.DialContext.
type Dialer struct {
	net.Dialer
	// Control, when set, runs on each dialled connection before it is wrapped (socket options
	// of the caller's, e.g. SO_LINGER).
	Control func(*net.TCPConn)
}

// DialContext dials addr and, for a TCP connection whose kernel stamps arrivals, returns a
// *Conn; otherwise the connection as dialled.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	if d.Control != nil {
		d.Control(tc)
	}
	if w := stamped(tc); w != nil {
		return w, nil
	}
	return c, nil
}

// Transport is a clone of http.DefaultTransport whose connections record arrival stamps.
func Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &Dialer{Dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}} // DefaultTransport's
	tr.DialContext = d.DialContext
	return tr
}

// Source is the connection a request was sent on, once net/http has chosen it.
type Source struct {
	conn atomic.Pointer[Conn]
}

// Latest is the kernel's receive time of the latest bytes read on the request's connection;
// false when the request's connection records none (or none was chosen yet).
func (s *Source) Latest() (time.Time, bool) {
	if s == nil {
		return time.Time{}, false
	}
	c := s.conn.Load()
	if c == nil {
		return time.Time{}, false
	}
	return c.Latest()
}

// Watch returns a context whose HTTP request reports its connection to the returned Source
// (net/http/httptrace's GotConn; hooks already in ctx still run).
func Watch(ctx context.Context) (context.Context, *Source) {
	s := &Source{}
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if c, ok := info.Conn.(*Conn); ok {
			s.conn.Store(c)
		}
	}}
	return httptrace.WithClientTrace(ctx, trace), s
}
