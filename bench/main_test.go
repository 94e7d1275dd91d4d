package bench

import (
	"flag"
	"os"
	"testing"

	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// TestMain starts a server only when benchmarks run: the package's tests
// need none, and scripts/test.sh runs them without -bench.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	mongotest.Main(m)
}
