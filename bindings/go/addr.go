package async

/*
#include <async.h>
#include <sys/socket.h>
*/
import "C"

import (
	"net"
	"strconv"
	"unsafe"
)

// goAddr turns a socket address into a *net.TCPAddr or *net.UDPAddr (udp
// true); nil for other families.
func goAddr(sa *C.struct_sockaddr, n C.size_t, udp bool) net.Addr {
	if sa == nil || n == 0 {
		return nil
	}
	var ip [16]C.uint8_t
	k := C.async_addr_get_ip(&ip[0], 16, sa, n)
	port := C.async_addr_port(sa, n)
	if k < 0 || port < 0 {
		return nil
	}
	goIP := net.IP(C.GoBytes(unsafe.Pointer(&ip[0]), k))
	var scope C.uint32_t
	zone := ""
	if C.async_addr_get_scope_id(&scope, sa, n) == 0 && scope != 0 {
		zone = strconv.Itoa(int(scope))
	}
	if udp {
		return &net.UDPAddr{IP: goIP, Port: int(port), Zone: zone}
	}
	return &net.TCPAddr{IP: goIP, Port: int(port), Zone: zone}
}

// splitHostPort is net.SplitHostPort with a numeric port.
func splitHostPort(address string) (string, uint16, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return "", 0, &net.AddrError{Err: "invalid port", Addr: address}
	}
	return host, uint16(port), nil
}

// cString is C.CString with "" as NULL (the library's "any"); free with cFree.
func cString(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}
