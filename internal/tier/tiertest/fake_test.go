package tiertest_test

import (
	"testing"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

func TestFakeConformance(t *testing.T) {
	tiertest.Run(t, func(*testing.T) engine.Authority { return &tiertest.Fake{} })
}
