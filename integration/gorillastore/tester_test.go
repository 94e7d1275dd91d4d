package gorillastore_test

import (
	"testing"

	ginsessions "github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/tester"

	"github.com/sessionstore/sessionstore/gorillastore/ginstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// gin-contrib/sessions' own suite for stores, which its Redis, MongoDB and
// cookie stores pass.
func TestGinContribSuite(t *testing.T) {
	newGinStore := func(t *testing.T) ginsessions.Store {
		st, err := ginstore.New(newSessions(t, mongotest.Collection(t), nil), nil, newKeys...)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	t.Run("GetSet", func(t *testing.T) { tester.GetSet(t, newGinStore) })
	t.Run("DeleteKey", func(t *testing.T) { tester.DeleteKey(t, newGinStore) })
	t.Run("Flashes", func(t *testing.T) { tester.Flashes(t, newGinStore) })
	t.Run("Clear", func(t *testing.T) { tester.Clear(t, newGinStore) })
	t.Run("Options", func(t *testing.T) { tester.Options(t, newGinStore) })
	t.Run("Many", func(t *testing.T) { tester.Many(t, newGinStore) })
}
