package tiertest_test

import (
	"testing"

	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

func TestFakeDeadlinesConformance(t *testing.T) {
	tiertest.RunDeadlines(t, func(*testing.T) tiertest.DeadlineAuthority { return &tiertest.Fake{} })
}

func TestFakeOwnersConformance(t *testing.T) {
	tiertest.RunOwners(t, func(*testing.T) tiertest.OwnerAuthority { return &tiertest.Fake{} })
}
