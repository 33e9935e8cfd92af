package atomicfile

import (
	"bufio"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// umask is the process's file mode creation mask, read once: from
// /proc/self/status where Linux shows it, else by setting it and putting it
// back (which leaves a moment in which another thread creating a file
// would see a zero mask, so it is the fallback).
var umask = sync.OnceValue(func() fs.FileMode {
	if m, ok := procUmask(); ok {
		return m
	}
	m := syscall.Umask(0o022)
	syscall.Umask(m)
	return fs.FileMode(m)
})

func procUmask() (fs.FileMode, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return fs.FileMode(m), err == nil
		}
	}
	return 0, false
}
