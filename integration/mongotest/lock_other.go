//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package mongotest

import "context"

// lockFile does not lock on this system: test processes that build FerretDB
// at the same moment may race on the binary.
func lockFile(context.Context, string) (unlock func(), err error) {
	return func() {}, nil
}
