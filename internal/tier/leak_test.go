package tier_test

import (
	"testing"

	"github.com/sessionstore/sessionstore/internal/leaktest"
)

// TestMain fails the package's tests if any leaves a goroutine running.
func TestMain(m *testing.M) { leaktest.Main(m) }
