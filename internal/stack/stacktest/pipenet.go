package stacktest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// PipeServer serves an http.Handler over in-memory connections (net.Pipe): no socket, so a
// test can run a fake server and the driver's client inside a testing/synctest bubble, where
// time.Sleep is virtual and every goroutine blocked on a connection is durably blocked. A fake
// that sleeps its declared time per token then produces exact arrival times, and so exact
// rates. Start it inside the bubble and Close it before the bubble ends.
type PipeServer struct {
	srv    *http.Server
	ln     *pipeListener
	client *http.Client
	tr     *http.Transport
}

// NewPipeServer starts serving h.
func NewPipeServer(h http.Handler) *PipeServer {
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	tr := &http.Transport{
		DialContext: ln.dial,
		// One connection per request, closed after it: nothing idles past the test.
		DisableKeepAlives: true,
	}
	p := &PipeServer{srv: &http.Server{Handler: h}, ln: ln, client: &http.Client{Transport: tr}, tr: tr}
	go p.srv.Serve(ln)
	return p
}

// Client is an HTTP client whose every connection reaches the server, whatever the URL's
// host ("http://pipe" will do).
func (p *PipeServer) Client() *http.Client { return p.client }

// Transport is Client's transport.
func (p *PipeServer) Transport() http.RoundTripper { return p.tr }

// Close stops the server and closes every connection.
func (p *PipeServer) Close() {
	p.tr.CloseIdleConnections()
	p.srv.Close()
}

type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, errors.New("pipe server closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
