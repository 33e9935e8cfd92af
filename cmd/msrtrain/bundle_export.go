//go:build msrbundle

package main

import "C"

// msrtrain_main runs the command line from a C main: `make gpu-bundle`
// builds this package as a C archive (-buildmode=c-archive -tags msrbundle)
// so that a GPU machine without Go can link msrtrain with g++ against its
// own libtorch (cgo/bundle/files/link.sh). The Go runtime reads os.Args from the
// process as in a Go-built executable.
//
//export msrtrain_main
func msrtrain_main() { main() }
