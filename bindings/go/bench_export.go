package async

// The callback path of the per-event benchmark (bench_test.go): what a
// binding without the queue pays per event, a C→Go call and a cgo.Handle
// lookup.

/*
#include <async.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export goBenchCallback
func goBenchCallback(loop *C.async_loop, ud unsafe.Pointer) {
	*(cgo.Handle(ud).Value().(*int))++
}
