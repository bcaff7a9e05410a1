package arrival

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// On Linux the stamp of what a read returns is the kernel's receipt, which precedes the read
// itself: the server writes and says so, and only then does the client read; the stamp lies
// between the moment before the write and the moment before the read (an ordering, not a
// duration: no timing is asserted). The kernel turns stamping on for the whole machine a
// moment after the first socket asks (a deferred static key), so the first segments of a
// machine's first such socket may come unstamped: those reads report no stamp, and the test
// writes until the stamps come (at most 200 rounds), then checks three stamped reads; an
// unstamped read reports none (not the stamp of an earlier read).
func TestStampIsTheKernelsReceiptNotTheRead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("kernel receive stamps are read on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const rounds = 200
	wrote, readDone := make(chan time.Time), make(chan bool)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for range rounds {
			before := time.Now()
			if _, err := c.Write([]byte("data: x\n\n")); err != nil {
				return
			}
			wrote <- before
			if !<-readDone { // one write per read, until the client has seen enough
				return
			}
		}
	}()
	var d Dialer
	nc, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, ok := nc.(*Conn)
	if !ok {
		t.Fatalf("dialled %T, want *arrival.Conn on Linux", nc)
	}
	if _, ok := c.Latest(); ok {
		t.Fatal("a stamp before anything was read")
	}
	buf := make([]byte, 64)
	stampedReads := 0
	for i := 0; i < rounds && stampedReads < 3; i++ {
		before := <-wrote
		beforeRead := time.Now()
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "data: x\n\n" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		at, ok := c.Latest()
		if ok {
			if at.Before(before) || at.After(beforeRead) {
				t.Fatalf("read %d: stamp %v, write began %v, read began %v: the stamp is not the kernel's receipt", i, at, before, beforeRead)
			}
			stampedReads++
		} else {
			time.Sleep(time.Millisecond) // an unstamped read: let the kernel turn stamping on
		}
		readDone <- stampedReads < 3
	}
	if stampedReads < 3 {
		t.Fatalf("%d stamped reads in %d", stampedReads, rounds)
	}
	// The end of the stream reads as io.EOF, as a TCP connection's does.
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("read to the end: %v", err)
	}
}

// A read past its deadline fails as a net.Conn's does (net/http relies on it).
func TestDeadlineHolds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	var d Dialer
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(-time.Second))
	_, err = c.Read(make([]byte, 8))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
}

// Through net/http: a request watched with Watch learns its connection, and the stamps of its
// response's reads; a request on a connection dialled elsewhere has none (the caller keeps
// its clock). Control sees the dialled connection.
func TestWatchFollowsTheRequestsConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("data: x\n\n"))
	}))
	defer srv.Close()
	controlled := 0
	d := &Dialer{Control: func(*net.TCPConn) { controlled++ }}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ctx, src := Watch(context.Background())
	if _, ok := src.Latest(); ok {
		t.Fatal("a stamp before the request")
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close()
	if err != nil || line != "data: x\n" {
		t.Fatalf("body %q, %v", line, err)
	}
	if controlled != 1 {
		t.Errorf("Control ran %d times, want 1", controlled)
	}
	if _, ok := src.Latest(); ok != (runtime.GOOS == "linux") {
		t.Errorf("stamp known: %v on %s", ok, runtime.GOOS)
	}

	ctx, src = Watch(context.Background())
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if at, ok := src.Latest(); ok {
		t.Errorf("a stamp %v from a connection that records none", at)
	}
	var nilSource *Source
	if _, ok := nilSource.Latest(); ok {
		t.Error("a nil Source has a stamp")
	}
}
