package ginstore

import (
	"errors"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/gorillastore"
)

// Store is a gin-contrib/sessions store: a [gorillastore.Store] with the
// Options method gin-contrib asks for. It is safe for concurrent use.
type Store struct {
	*gorillastore.Store
}

var _ sessions.Store = (*Store)(nil)

// New returns a gin-contrib store over store, which should pass bytes
// through unchanged, as one made by [gorillastore.NewSessionStore] does.
// opts and keyPairs are those of [gorillastore.New]: the first key pair
// signs new cookies, every pair is tried on the cookies received.
func New(store *sessionstore.Store[[]byte], opts *gorillastore.Options, keyPairs ...[]byte) (*Store, error) {
	st, err := gorillastore.New(store, opts, keyPairs...)
	if err != nil {
		return nil, err
	}
	return &Store{st}, nil
}

// Options sets the cookie options of new sessions, as gin-contrib's own
// stores do, and the age after which a cookie's signature is refused, as
// [gorillastore.Store.MaxAge] does. MaxAge also sets the sessions'
// lifetime in the database. Call it before serving requests.
func (s *Store) Options(o sessions.Options) {
	s.Store.Options = o.ToGorillaOptions()
	s.Store.MaxAge(o.MaxAge)
}

// unsaved is a key no session holds: deleting it marks a gin-contrib
// session changed, so that its Save saves it.
type unsaved struct{}

// Change is [gorillastore.Change] for the gin-contrib session s of the
// request of c: it calls fn with the session's values now and records it,
// so that if another request saves the session meanwhile, Save calls fn
// again on the stored values. Use it for read-modify-write changes, such
// as a counter, that concurrent requests must not lose:
//
//	err := ginstore.Change(c, sessions.Default(c), func(v map[any]any) {
//		n, _ := v["count"].(int)
//		v["count"] = n + 1
//	})
//
// fn may run more than once, each time on other values, and should have
// no other effects. Change marks the session changed, as Set does; the
// handler still calls Save. It returns an error, calling nothing, if s
// is not a session of the sessions middleware or not kept by a Store.
func Change(c *gin.Context, s sessions.Session, fn func(values map[any]any)) error {
	gs, ok := s.(interface{ Session() *gsessions.Session })
	if !ok {
		return errors.New("ginstore: Change needs a session from sessions.Default or sessions.DefaultMany")
	}
	sess := gs.Session()
	if sess == nil {
		return errors.New("ginstore: Change: the sessions middleware has no session for this request")
	}
	if _, ok := sess.Store().(*gorillastore.Store); !ok {
		return errors.New("ginstore: Change needs a session kept by a ginstore.Store")
	}
	gorillastore.Change(c.Request, sess, fn)
	s.Delete(unsaved{})
	return nil
}
