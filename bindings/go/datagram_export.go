package async

// The datagram protocol's callbacks, the one place the binding takes C
// callbacks instead of queue records (a datagram's bytes and sender are
// valid only during the call). One cgo.Handle per transport, deleted at
// its release: never one per event.

/*
#include <async.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export goDatagramReceived
func goDatagramReceived(d *C.async_datagram, data *C.uint8_t, n C.size_t, addr *C.struct_sockaddr, addrlen C.size_t, ud unsafe.Pointer) {
	u := cgo.Handle(ud).Value().(*UDPConn)
	u.received(C.GoBytes(unsafe.Pointer(data), C.int(n)), goAddr(addr, addrlen, true))
}

//export goDatagramError
func goDatagramError(d *C.async_datagram, err C.int, ud unsafe.Pointer) {
	cgo.Handle(ud).Value().(*UDPConn).failed(codeError(err))
}

//export goDatagramLost
func goDatagramLost(d *C.async_datagram, err C.int, ud unsafe.Pointer) {
	cgo.Handle(ud).Value().(*UDPConn).lost(codeError(err))
}

//export goDatagramRelease
func goDatagramRelease(ud unsafe.Pointer) {
	h := cgo.Handle(ud)
	u := h.Value().(*UDPConn)
	h.Delete()
	u.l.unregister(u.token)
}
