package httpsession

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Record is what the middleware stores for a session of type T: T's
// fields, express-session's cookie object beside them, and every field of
// the stored session that T does not declare. A store for [New] holds
// Records; with codec.BSON its documents are the ones express-session's
// Node stores write:
//
//	store, err := sessionstore.Open(ctx, uri, &sessionstore.Options[httpsession.Record[Session]]{
//		Codec: codec.BSON[httpsession.Record[Session]]{},
//	})
//
// In BSON, a Record is one document: "cookie" and T's fields at the same
// level, as express-session keeps them. T must therefore encode as a
// document (a struct, a map with string keys, bson.D or bson.M) and must
// not have a field named "cookie". A field that T does not declare, at
// any depth of nested documents, is kept as it was stored, with its BSON
// type, when the Record is stored again; a field T declares but omits
// (omitempty) is removed. Inside arrays, and in T's fields of interface or
// map type, the stored value is T's alone. Fields of nested documents are
// matched by name; T may implement bson.Marshaler to decide everything
// itself, and then nothing unknown is kept.
//
// With other codecs a Record is stored in Go's own form, readable by Go
// only: Node stores use BSON or JSON text.
type Record[T any] struct {
	// Cookie is the stored cookie object. The middleware sets it on every
	// save.
	Cookie Cookie
	// Value is the session's own value, which handlers see.
	Value T

	// stored is the session as read, without its cookie: the source of
	// the fields T does not declare. Nil for a new Record. Never
	// modified: copies of a Record share it.
	stored bson.Raw
	// cookie is the cookie object as read, or nil.
	cookie bson.Raw
}

// cookieKey is the field of a stored session holding express-session's
// cookie object.
const cookieKey = "cookie"

// MarshalBSON encodes r as one document: the cookie object, T's fields,
// and the stored fields T does not declare.
func (r Record[T]) MarshalBSON() ([]byte, error) {
	v, err := bson.Marshal(r.Value)
	if err != nil {
		return nil, fmt.Errorf("httpsession: encode %s: it must encode as a BSON document: %w", typeName[T](), err)
	}
	own := bson.Raw(v)
	if _, err := own.LookupErr(cookieKey); err == nil {
		return nil, fmt.Errorf("httpsession: encode %s: it has a field %q, which the middleware keeps; remove it", typeName[T](), cookieKey)
	}
	cookie, err := encodeCookie(&r.Cookie, r.cookie)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(v)+len(cookie)+len(r.stored)+16)
	b = startDocument(b)
	b = appendElement(b, cookieKey, bson.TypeEmbeddedDocument, cookie)
	b, err = mergeElements(b, own, r.stored, shapeOf(reflect.TypeFor[T]()))
	if err != nil {
		return nil, fmt.Errorf("httpsession: encode %s: %w", typeName[T](), err)
	}
	return endDocument(b), nil
}

// UnmarshalBSON decodes a stored session into r: its cookie object into
// Cookie, the rest into Value. It keeps copies of both to store again
// what T does not declare. A session without a cookie object (one that a
// Go type without a cookie stored, say) gets a zero Cookie.
func (r *Record[T]) UnmarshalBSON(b []byte) error {
	raw := bson.Raw(b)
	elems, err := raw.Elements()
	if err != nil {
		return fmt.Errorf("httpsession: decode %s: %w", typeName[T](), err)
	}
	rest := make([]byte, 0, len(b))
	rest = startDocument(rest)
	var cookie bson.Raw
	for _, e := range elems {
		if e.Key() != cookieKey {
			rest = append(rest, e...)
			continue
		}
		if doc, ok := e.Value().DocumentOK(); ok {
			cookie = append(bson.Raw(nil), doc...)
		}
	}
	rest = endDocument(rest)
	var v T
	if err := bson.Unmarshal(rest, &v); err != nil {
		return fmt.Errorf("httpsession: decode %s: %w", typeName[T](), err)
	}
	*r = Record[T]{Value: v, stored: rest, cookie: cookie}
	if cookie != nil {
		r.Cookie = decodeCookie(cookie)
	}
	return nil
}

// mergeElements appends to b the elements of own, T's encoding, and then
// those of stored that sh does not declare. Where own and stored both
// hold a document under a key whose shape is known, the two are merged
// the same way, one level down.
func mergeElements(b []byte, own, stored bson.Raw, sh *shape) ([]byte, error) {
	elems, err := own.Elements()
	if err != nil {
		return nil, err
	}
	for _, e := range elems {
		k := e.Key()
		child := sh.child(k)
		if child == nil || stored == nil {
			b = append(b, e...)
			continue
		}
		mine, ok := e.Value().DocumentOK()
		if !ok {
			b = append(b, e...)
			continue
		}
		old, ok := stored.Lookup(k).DocumentOK()
		if !ok {
			b = append(b, e...)
			continue
		}
		sub := startDocument(nil)
		if sub, err = mergeElements(sub, mine, old, child); err != nil {
			return nil, err
		}
		b = appendElement(b, k, bson.TypeEmbeddedDocument, endDocument(sub))
	}
	if sh == nil || sh.all || stored == nil {
		return b, nil
	}
	old, err := stored.Elements()
	if err != nil {
		return nil, err
	}
	for _, e := range old {
		if !sh.declares(e.Key()) {
			b = append(b, e...)
		}
	}
	return b, nil
}

// shape is what a Go type declares of a BSON document: which keys it
// reads and writes, and the shape of the document under each. A nil
// shape is a value Go owns entirely: nothing in the stored value is kept
// beyond what Go writes.
type shape struct {
	fields map[string]*shape // declared keys; a nil value owns its key
	all    bool              // every key is declared (a map)
	elem   *shape            // with all, the shape under any key not in fields
}

// declares reports whether key belongs to the type.
func (s *shape) declares(key string) bool {
	if s == nil || s.all {
		return true
	}
	_, ok := s.fields[key]
	return ok
}

// child returns the shape of the document under key, or nil.
func (s *shape) child(key string) *shape {
	if s == nil {
		return nil
	}
	if c, ok := s.fields[key]; ok {
		return c
	}
	return s.elem
}

// shapes caches shapeOf by type.
var shapes sync.Map // reflect.Type → *shape

var (
	tMarshaler      = reflect.TypeFor[bson.Marshaler]()
	tValueMarshaler = reflect.TypeFor[bson.ValueMarshaler]()
	tUnmarshaler    = reflect.TypeFor[bson.Unmarshaler]()
)

// shapeOf returns what t declares, following the driver's rules for
// struct fields: exported fields, keyed by their bson tag's name or else
// their lowercased name, "-" skipped, inline structs and maps merged in.
func shapeOf(t reflect.Type) *shape {
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	s := buildShape(t, map[reflect.Type]*shape{})
	shapes.Store(t, s)
	return s
}

// buildShape computes t's shape; building holds the shapes of the types
// being built, so that recursive types end.
func buildShape(t reflect.Type, building map[reflect.Type]*shape) *shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := building[t]; ok {
		return s
	}
	pt := reflect.PointerTo(t)
	if t.Implements(tMarshaler) || pt.Implements(tMarshaler) || t.Implements(tValueMarshaler) ||
		pt.Implements(tValueMarshaler) || pt.Implements(tUnmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil
		}
		s := &shape{all: true}
		building[t] = s
		s.elem = buildShape(t.Elem(), building)
		return s
	case reflect.Struct:
		s := &shape{fields: map[string]*shape{}}
		building[t] = s
		addFields(s, t, building)
		return s
	}
	return nil
}

// addFields adds the fields of struct type t to s.
func addFields(s *shape, t reflect.Type, building map[reflect.Type]*shape) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, inline, skip := fieldTag(f)
		if skip {
			continue
		}
		if !inline {
			s.fields[name] = buildShape(f.Type, building)
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Map:
			s.all = true
			s.elem = buildShape(ft.Elem(), building)
		case reflect.Struct:
			addFields(s, ft, building)
		}
	}
}

// fieldTag parses a struct field's bson tag as the driver does.
func fieldTag(f reflect.StructField) (name string, inline, skip bool) {
	name = strings.ToLower(f.Name)
	tag, ok := f.Tag.Lookup("bson")
	if !ok && !strings.Contains(string(f.Tag), ":") && len(f.Tag) > 0 {
		tag = string(f.Tag)
	}
	if tag == "-" {
		return "", false, true
	}
	for i, part := range strings.Split(tag, ",") {
		if i == 0 && part != "" {
			name = part
		}
		if part == "inline" {
			inline = true
		}
	}
	return name, inline, false
}

// checkType reports an error if T cannot be stored in a Record.
func checkType[T any]() error {
	if hasField(shapeOf(reflect.TypeFor[T]()), cookieKey) {
		return fmt.Errorf("httpsession: %s has a field %q: remove it, the middleware keeps express-session's cookie object (see Session.Cookie)", typeName[T](), cookieKey)
	}
	return nil
}

// typeName returns T's name for error messages.
func typeName[T any]() string {
	if t := reflect.TypeFor[T](); t != nil {
		return t.String()
	}
	return "<nil>"
}

// hasField reports whether s declares key as a struct field.
func hasField(s *shape, key string) bool {
	if s == nil {
		return false
	}
	_, ok := s.fields[key]
	return ok
}
