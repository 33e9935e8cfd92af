package main

import (
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/msrtrain/msrtrain/data/atomicfile"
)

// stdoutName is the --output value that means standard output.
const stdoutName = "-"

// errReaderGone reports that standard output's reader went away (a closed
// pipe, as `| head` leaves): the command ends quietly with status 0, as Unix
// filters do.
var errReaderGone = errors.New("standard output closed by its reader")

// writeOutput writes a command's --output with atomicfile.Output (a file
// whole or not at all; standard output, a pipe or a terminal in place and
// never fsynced), where a reader that went away is errReaderGone.
func writeOutput(path string, write func(w io.Writer) error) error {
	err := atomicfile.Output(path, os.Stdout, write)
	if errors.Is(err, syscall.EPIPE) {
		return errReaderGone
	}
	return err
}
