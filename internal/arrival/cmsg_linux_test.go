package arrival

import (
	"syscall"
	"testing"
	"unsafe"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, syscall.CmsgSpace(len(data)))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(syscall.CmsgLen(len(data)))
	copy(b[syscall.CmsgLen(0):], data)
	return b
}

// The stamp is found after another message, and nothing is read from a truncated or foreign one.
func TestTimestampNSWalksTheControlMessages(t *testing.T) {
	ts := syscall.NsecToTimespec(1_796_049_702_856_352_000)
	tsBytes := unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts))
	other := cmsg(syscall.SOL_SOCKET, syscall.SCM_RIGHTS, []byte{1, 2, 3, 4, 5})
	stamp := cmsg(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMPNS, tsBytes)
	if ns, ok := timestampNS(append(append([]byte(nil), other...), stamp...)); !ok || ns != ts.Nano() {
		t.Errorf("after another message: %d %v, want %d", ns, ok, ts.Nano())
	}
	for name, oob := range map[string][]byte{
		"none":      nil,
		"foreign":   other,
		"truncated": stamp[:len(stamp)-4],
		"short":     cmsg(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMPNS, tsBytes[:8]),
	} {
		if ns, ok := timestampNS(oob); ok {
			t.Errorf("%s: stamp %d", name, ns)
		}
	}
}
