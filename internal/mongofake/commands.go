package mongofake

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Server error codes the fake answers with.
const (
	codeBadValue              = 2
	codeFailedToParse         = 9
	codeTypeMismatch          = 14
	codeNamespaceNotFound     = 26
	codeIndexNotFound         = 27
	codeCursorNotFound        = 43
	codeMaxTimeMSExpired      = 50
	codeShutdownInProgress    = 91
	codeCommandNotFound       = 59
	codeImmutableField        = 66
	codeInvalidOptions        = 72
	codeNotSingleValueField   = 54
	codeIDLBadValue           = 51024
	codeIndexOptionsConflict  = 85
	codeIndexKeySpecsConflict = 86
	codeDuplicateKey          = 11000
	codeUnknownStage          = 40324
)

var codeNames = map[int32]string{
	codeBadValue:              "BadValue",
	codeFailedToParse:         "FailedToParse",
	codeTypeMismatch:          "TypeMismatch",
	codeNamespaceNotFound:     "NamespaceNotFound",
	codeIndexNotFound:         "IndexNotFound",
	codeCursorNotFound:        "CursorNotFound",
	codeMaxTimeMSExpired:      "MaxTimeMSExpired",
	codeShutdownInProgress:    "ShutdownInProgress",
	codeCommandNotFound:       "CommandNotFound",
	codeImmutableField:        "ImmutableField",
	codeInvalidOptions:        "InvalidOptions",
	codeNotSingleValueField:   "NotSingleValueField",
	codeIDLBadValue:           "Location51024",
	codeIndexOptionsConflict:  "IndexOptionsConflict",
	codeIndexKeySpecsConflict: "IndexKeySpecsConflict",
	codeDuplicateKey:          "DuplicateKey",
	codeUnknownStage:          "Location40324",
}

// cmdError is a command failure: a reply with ok 0.
type cmdError struct {
	code int32
	msg  string
}

func (e *cmdError) Error() string { return e.msg }

func errorf(code int32, format string, args ...any) error {
	return &cmdError{code: code, msg: fmt.Sprintf(format, args...)}
}

func errorReply(e *cmdError) bson.D {
	return bson.D{
		{Key: "ok", Value: 0.0},
		{Key: "errmsg", Value: e.msg},
		{Key: "code", Value: e.code},
		{Key: "codeName", Value: codeNames[e.code]},
	}
}

// collection is one namespace's documents.
type collection struct {
	docs    map[string]bson.Raw // by idKey of _id
	indexes []bson.Raw          // specs besides _id_, in creation order
}

// sorted returns the documents ordered by _id.
func (c *collection) sorted() []bson.Raw {
	docs := make([]bson.Raw, 0, len(c.docs))
	for _, d := range c.docs {
		docs = append(docs, d)
	}
	sort.Slice(docs, func(i, j int) bool {
		return compare(docs[i].Lookup("_id"), docs[j].Lookup("_id")) < 0
	})
	return docs
}

// cursor holds the documents of a result that did not fit in one batch.
type cursor struct {
	ns   string
	docs []bson.Raw
}

const defaultBatch = 101

func (s *Server) dispatch(cmd command, connID int32) (bson.D, error) {
	switch cmd.name {
	case "hello", "isMaster", "ismaster":
		return s.hello(cmd, connID), nil
	case "ping", "endSessions":
		return bson.D{}, nil
	case "buildInfo", "buildinfo":
		return bson.D{
			{Key: "version", Value: "7.0.0"},
			{Key: "versionArray", Value: bson.A{int32(7), int32(0), int32(0), int32(0)}},
			{Key: "maxBsonObjectSize", Value: int32(maxBSONSize)},
		}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cmd.name {
	case "find":
		return s.find(cmd)
	case "getMore":
		return s.getMore(cmd)
	case "killCursors":
		return s.killCursors(cmd)
	case "insert":
		return s.insert(cmd)
	case "update":
		return s.update(cmd)
	case "delete":
		return s.delete(cmd)
	case "findAndModify", "findandmodify":
		return s.findAndModify(cmd)
	case "count":
		return s.count(cmd)
	case "aggregate":
		return s.aggregate(cmd)
	case "createIndexes":
		return s.createIndexes(cmd)
	case "listIndexes":
		return s.listIndexes(cmd)
	case "dropIndexes":
		return s.dropIndexes(cmd)
	case "collMod":
		return s.collMod(cmd)
	case "drop":
		return s.drop(cmd)
	case "dropDatabase":
		return s.dropDatabase(cmd)
	case "listCollections":
		return s.listCollections(cmd)
	}
	return nil, errorf(codeCommandNotFound, "no such command: '%s'", cmd.name)
}

func (s *Server) hello(cmd command, connID int32) bson.D {
	primary := "ismaster"
	if cmd.name == "hello" {
		primary = "isWritablePrimary"
	}
	return bson.D{
		{Key: "helloOk", Value: true},
		{Key: primary, Value: true},
		{Key: "maxBsonObjectSize", Value: int32(maxBSONSize)},
		{Key: "maxMessageSizeBytes", Value: int32(maxMessageSize)},
		{Key: "maxWriteBatchSize", Value: int32(maxWriteBatch)},
		{Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: "logicalSessionTimeoutMinutes", Value: int32(30)},
		{Key: "connectionId", Value: connID},
		{Key: "minWireVersion", Value: int32(0)},
		{Key: "maxWireVersion", Value: int32(21)},
		{Key: "readOnly", Value: false},
	}
}

// collName returns the collection a command names in its first field.
func collName(cmd command) (string, error) {
	name, ok := cmd.body.Lookup(cmd.name).StringValueOK()
	if !ok || name == "" {
		return "", errorf(codeBadValue, "%s: collection name must be a non-empty string", cmd.name)
	}
	return name, nil
}

func (s *Server) ns(cmd command) (string, error) {
	name, err := collName(cmd)
	if err != nil {
		return "", err
	}
	return cmd.db + "." + name, nil
}

// coll returns the collection of ns, creating it if create is set, nil
// if it does not exist.
func (s *Server) coll(ns string, create bool) *collection {
	c := s.colls[ns]
	if c == nil && create {
		c = &collection{docs: make(map[string]bson.Raw)}
		s.colls[ns] = c
	}
	return c
}

// docs returns the documents of field, from a document sequence or an
// array in the body.
func (c command) docs(field string) ([]bson.Raw, error) {
	if seq, ok := c.seqs[field]; ok {
		return seq, nil
	}
	v, err := c.body.LookupErr(field)
	if err != nil {
		return nil, nil
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, errorf(codeTypeMismatch, "%s: %s must be an array", c.name, field)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, err
	}
	docs := make([]bson.Raw, 0, len(vals))
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return nil, errorf(codeTypeMismatch, "%s: %s must hold documents", c.name, field)
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// optDoc returns field of doc as a document, nil if absent.
func optDoc(doc bson.Raw, field string) (bson.Raw, error) {
	v, err := doc.LookupErr(field)
	if err != nil || v.Type == bson.TypeNull {
		return nil, nil
	}
	d, ok := v.DocumentOK()
	if !ok {
		return nil, errorf(codeTypeMismatch, "%s must be a document", field)
	}
	return d, nil
}

// optInt returns field of doc as an integer, 0 if absent.
func optInt(doc bson.Raw, field string) (int64, error) {
	v, err := doc.LookupErr(field)
	if err != nil {
		return 0, nil
	}
	n, ok := v.AsInt64OK()
	if !ok {
		return 0, errorf(codeTypeMismatch, "%s must be a number", field)
	}
	return n, nil
}

func truthy(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		f, _ := v.AsFloat64OK()
		return f != 0
	case bson.TypeNull, bson.TypeUndefined, 0: // 0: missing
		return false
	}
	return true
}

// matching returns the documents of c that match filter, by _id.
func matching(c *collection, filter bson.Raw) ([]bson.Raw, error) {
	if c == nil {
		if filter != nil {
			if _, err := matches(bson.Raw{5, 0, 0, 0, 0}, filter); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	return keep(c.sorted(), filter)
}

// keep returns the docs that match filter, in their order.
func keep(docs []bson.Raw, filter bson.Raw) ([]bson.Raw, error) {
	var out []bson.Raw
	for _, d := range docs {
		ok, err := matches(d, filter)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// query returns the namespace of a read command and the documents that
// match its filter, the document in field.
func (s *Server) query(cmd command, field string) (string, []bson.Raw, error) {
	ns, err := s.ns(cmd)
	if err != nil {
		return "", nil, err
	}
	filter, err := optDoc(cmd.body, field)
	if err != nil {
		return "", nil, err
	}
	docs, err := matching(s.coll(ns, false), filter)
	return ns, docs, err
}

// skipLimit returns the skip and limit fields of doc, 0 if absent.
func skipLimit(doc bson.Raw) (skip, limit int64, err error) {
	if skip, err = optInt(doc, "skip"); err == nil {
		limit, err = optInt(doc, "limit")
	}
	return skip, limit, err
}

func (s *Server) find(cmd command) (bson.D, error) {
	ns, docs, err := s.query(cmd, "filter")
	if err != nil {
		return nil, err
	}
	sortSpec, err := optDoc(cmd.body, "sort")
	if err != nil {
		return nil, err
	}
	if err := sortDocs(docs, sortSpec); err != nil {
		return nil, err
	}
	skip, limit, err := skipLimit(cmd.body)
	if err != nil {
		return nil, err
	}
	batch, err := optInt(cmd.body, "batchSize")
	if err != nil {
		return nil, err
	}
	single := truthy(cmd.body.Lookup("singleBatch"))
	if skip < 0 || batch < 0 {
		return nil, errorf(codeBadValue, "find: skip and batchSize must not be negative")
	}
	if limit < 0 { // legacy: a negative limit is a single batch
		limit, single = -limit, true
	}
	docs = docs[min(int(skip), len(docs)):]
	if limit > 0 && int(limit) < len(docs) {
		docs = docs[:limit]
	}
	proj, err := optDoc(cmd.body, "projection")
	if err != nil {
		return nil, err
	}
	if proj != nil {
		for i, d := range docs {
			if docs[i], err = project(d, proj); err != nil {
				return nil, err
			}
		}
	}
	first := int(batch)
	if batch == 0 {
		first = defaultBatch
		if single && limit > 0 {
			first = int(limit)
		}
	}
	return s.cursorReply(ns, docs, first, single, "firstBatch", 0), nil
}

// cursorReply returns the first n of docs as a cursor reply and keeps the
// rest for getMore under id (a new id if 0), unless single is set.
func (s *Server) cursorReply(ns string, docs []bson.Raw, n int, single bool, batchName string, id int64) bson.D {
	n = min(n, len(docs))
	batch := make(bson.A, n)
	for i, d := range docs[:n] {
		batch[i] = d
	}
	if rest := docs[n:]; len(rest) > 0 && !single {
		if id == 0 {
			s.nextCursor++
			id = s.nextCursor
		}
		s.cursors[id] = &cursor{ns: ns, docs: rest}
	} else {
		id = 0
	}
	return bson.D{{Key: "cursor", Value: bson.D{
		{Key: batchName, Value: batch},
		{Key: "id", Value: id},
		{Key: "ns", Value: ns},
	}}}
}

func (s *Server) getMore(cmd command) (bson.D, error) {
	id, ok := cmd.body.Lookup("getMore").AsInt64OK()
	if !ok {
		return nil, errorf(codeTypeMismatch, "getMore: cursor id must be a number")
	}
	coll, ok := cmd.body.Lookup("collection").StringValueOK()
	if !ok {
		return nil, errorf(codeTypeMismatch, "getMore: collection must be a string")
	}
	cur := s.cursors[id]
	if cur == nil || cur.ns != cmd.db+"."+coll {
		return nil, errorf(codeCursorNotFound, "cursor id %d not found", id)
	}
	delete(s.cursors, id)
	batch, err := optInt(cmd.body, "batchSize")
	if err != nil {
		return nil, err
	}
	n := len(cur.docs)
	if batch > 0 {
		n = int(batch)
	}
	return s.cursorReply(cur.ns, cur.docs, n, false, "nextBatch", id), nil
}

func (s *Server) killCursors(cmd command) (bson.D, error) {
	ids, err := cmd.body.LookupErr("cursors")
	if err != nil {
		return nil, errorf(codeFailedToParse, "killCursors: missing cursors")
	}
	arr, ok := ids.ArrayOK()
	if !ok {
		return nil, errorf(codeTypeMismatch, "killCursors: cursors must be an array")
	}
	vals, _ := arr.Values()
	killed, unknown := bson.A{}, bson.A{}
	for _, v := range vals {
		id, _ := v.AsInt64OK()
		if _, ok := s.cursors[id]; ok {
			delete(s.cursors, id)
			killed = append(killed, id)
		} else {
			unknown = append(unknown, id)
		}
	}
	return bson.D{
		{Key: "cursorsKilled", Value: killed},
		{Key: "cursorsNotFound", Value: unknown},
		{Key: "cursorsAlive", Value: bson.A{}},
		{Key: "cursorsUnknown", Value: bson.A{}},
	}, nil
}

func dupKeyError(ns string, id bson.RawValue) error {
	return errorf(codeDuplicateKey, "E11000 duplicate key error collection: %s index: _id_ dup key: { _id: %s }", ns, id)
}

func writeError(index int, err error) bson.D {
	var ce *cmdError
	if !errors.As(err, &ce) {
		ce = &cmdError{code: codeBadValue, msg: err.Error()}
	}
	return bson.D{{Key: "index", Value: int32(index)}, {Key: "code", Value: ce.code}, {Key: "errmsg", Value: ce.msg}}
}

// ordered reports whether a write command stops at its first error; the
// default is true.
func ordered(cmd command) bool {
	v, err := cmd.body.LookupErr("ordered")
	return err != nil || truthy(v)
}

func (s *Server) insert(cmd command) (bson.D, error) {
	var n int32
	errs, err := s.writeEach(cmd, "documents", true, func(ns string, c *collection, _ int, d bson.Raw) error {
		if err := s.insertOne(ns, c, d); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	return withWriteErrors(bson.D{{Key: "n", Value: n}}, errs), nil
}

// writeEach runs do on each statement (at index i) of the array field of a write
// command and returns their write errors; an ordered command stops at the
// first. create makes the collection if it is missing; else c may be nil.
func (s *Server) writeEach(cmd command, field string, create bool, do func(ns string, c *collection, i int, st bson.Raw) error) (bson.A, error) {
	ns, err := s.ns(cmd)
	if err != nil {
		return nil, err
	}
	stmts, err := cmd.docs(field)
	if err != nil {
		return nil, err
	}
	c := s.coll(ns, create)
	var errs bson.A
	for i, st := range stmts {
		if err := do(ns, c, i, st); err != nil {
			errs = append(errs, writeError(i, err))
			if ordered(cmd) {
				break
			}
		}
	}
	return errs, nil
}

// withWriteErrors returns the reply of a write command, with its write
// errors if there are any.
func withWriteErrors(reply bson.D, errs bson.A) bson.D {
	if errs != nil {
		reply = append(reply, bson.E{Key: "writeErrors", Value: errs})
	}
	return reply
}

// insertOne stores doc, giving it an ObjectID _id if it has none.
func (s *Server) insertOne(ns string, c *collection, doc bson.Raw) error {
	id, err := doc.LookupErr("_id")
	if err != nil {
		if doc, err = withObjectID(doc); err != nil {
			return err
		}
		id = doc.Lookup("_id")
	}
	if id.Type == bson.TypeArray || id.Type == bson.TypeRegex {
		return errorf(codeBadValue, "can't use a %s for _id", id.Type)
	}
	key := idKey(id)
	if _, ok := c.docs[key]; ok {
		return dupKeyError(ns, id)
	}
	c.docs[key] = append(bson.Raw(nil), doc...)
	return nil
}

// replaceDoc stores doc in place of old; they have the same _id.
func replaceDoc(c *collection, doc bson.Raw) {
	c.docs[idKey(doc.Lookup("_id"))] = doc
}

func (s *Server) update(cmd command) (bson.D, error) {
	var n, modified int32
	var upserted bson.A
	errs, err := s.writeEach(cmd, "updates", true, func(ns string, c *collection, i int, st bson.Raw) error {
		res, err := s.updateOne(ns, c, st)
		if err != nil {
			return err
		}
		n += res.matched
		modified += res.modified
		if res.upserted != nil {
			n++
			upserted = append(upserted, bson.D{{Key: "index", Value: int32(i)}, {Key: "_id", Value: *res.upserted}})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	reply := bson.D{{Key: "n", Value: n}, {Key: "nModified", Value: modified}}
	if upserted != nil {
		reply = append(reply, bson.E{Key: "upserted", Value: upserted})
	}
	return withWriteErrors(reply, errs), nil
}

type updateResult struct {
	matched, modified int32
	upserted          *bson.RawValue
	before, after     bson.Raw // of the first document matched or upserted
}

// updateOne runs one update statement {q, u, upsert, multi}.
func (s *Server) updateOne(ns string, c *collection, st bson.Raw) (updateResult, error) {
	var res updateResult
	q, err := optDoc(st, "q")
	if err != nil {
		return res, err
	}
	uv, err := st.LookupErr("u")
	if err != nil {
		return res, errorf(codeFailedToParse, "update: missing u")
	}
	u, ok := uv.DocumentOK()
	if !ok {
		return res, errorf(codeFailedToParse, "mongofake: update u must be a document; pipelines are not supported")
	}
	multi := truthy(st.Lookup("multi"))
	upsert := truthy(st.Lookup("upsert"))
	if multi && !isOperatorUpdate(u) {
		return res, errorf(codeFailedToParse, "multi update is not supported for replacement-style update")
	}
	return s.apply(ns, c, q, u, multi, upsert)
}

// apply updates the documents matching q with u.
func (s *Server) apply(ns string, c *collection, q, u bson.Raw, multi, upsert bool) (updateResult, error) {
	var res updateResult
	docs, err := matching(c, q)
	if err != nil {
		return res, err
	}
	if !multi && len(docs) > 1 {
		docs = docs[:1]
	}
	// Compute every new document before storing any: a failing update
	// changes nothing.
	updated := make([]bson.Raw, len(docs))
	for i, d := range docs {
		if updated[i], err = applyUpdate(d, u, false); err != nil {
			return res, err
		}
	}
	for i, d := range docs {
		res.matched++
		if i == 0 {
			res.before, res.after = d, updated[i]
		}
		if !equalDocs(d, updated[i]) {
			res.modified++
			replaceDoc(c, updated[i])
		}
	}
	if len(docs) > 0 || !upsert {
		return res, nil
	}
	seed, err := upsertSeed(q)
	if err != nil {
		return res, err
	}
	doc, err := applyUpdate(seed, u, true)
	if err != nil {
		return res, err
	}
	if doc, err = idFirst(doc); err != nil {
		return res, err
	}
	if err := s.insertOne(ns, c, doc); err != nil {
		return res, err
	}
	id := doc.Lookup("_id")
	res.upserted, res.after = &id, doc
	return res, nil
}

func equalDocs(a, b bson.Raw) bool { return string(a) == string(b) }

func (s *Server) delete(cmd command) (bson.D, error) {
	var n int32
	errs, err := s.writeEach(cmd, "deletes", false, func(_ string, c *collection, _ int, st bson.Raw) error {
		deleted, err := deleteOne(c, st)
		n += deleted
		return err
	})
	if err != nil {
		return nil, err
	}
	return withWriteErrors(bson.D{{Key: "n", Value: n}}, errs), nil
}

// deleteOne runs one delete statement {q, limit}: limit 1 deletes the
// first match, 0 all of them.
func deleteOne(c *collection, st bson.Raw) (int32, error) {
	q, err := optDoc(st, "q")
	if err != nil {
		return 0, err
	}
	limit, err := optInt(st, "limit")
	if err != nil {
		return 0, err
	}
	if limit != 0 && limit != 1 {
		return 0, errorf(codeFailedToParse, "delete: limit must be 0 or 1")
	}
	docs, err := matching(c, q)
	if err != nil {
		return 0, err
	}
	if limit == 1 && len(docs) > 1 {
		docs = docs[:1]
	}
	for _, d := range docs {
		delete(c.docs, idKey(d.Lookup("_id")))
	}
	return int32(len(docs)), nil
}

func (s *Server) findAndModify(cmd command) (bson.D, error) {
	ns, err := s.ns(cmd)
	if err != nil {
		return nil, err
	}
	q, err := optDoc(cmd.body, "query")
	if err != nil {
		return nil, err
	}
	sortSpec, err := optDoc(cmd.body, "sort")
	if err != nil {
		return nil, err
	}
	proj, err := optDoc(cmd.body, "fields")
	if err != nil {
		return nil, err
	}
	remove := truthy(cmd.body.Lookup("remove"))
	if remove {
		for _, f := range []string{"update", "new", "upsert"} {
			if v, err := cmd.body.LookupErr(f); err == nil && (f == "update" || truthy(v)) {
				return nil, errorf(codeFailedToParse, "findAndModify: cannot specify both %s and remove=true", f)
			}
		}
	}
	c := s.coll(ns, true)
	if sortSpec != nil { // narrow q to the first document in sort order
		docs, err := matching(c, q)
		if err != nil {
			return nil, err
		}
		if err := sortDocs(docs, sortSpec); err != nil {
			return nil, err
		}
		if len(docs) > 0 {
			q, err = build([]elem{{"_id", docs[0].Lookup("_id")}})
			if err != nil {
				return nil, err
			}
		}
	}
	var value any // nil encodes as BSON null
	lastErr := bson.D{}
	if remove {
		docs, err := matching(c, q)
		if err != nil {
			return nil, err
		}
		if len(docs) > 0 {
			delete(c.docs, idKey(docs[0].Lookup("_id")))
			value = docs[0]
		}
		lastErr = bson.D{{Key: "n", Value: int32(len(docs[:min(1, len(docs))]))}}
	} else {
		u, err := optDoc(cmd.body, "update")
		if err != nil {
			return nil, err
		}
		if u == nil {
			return nil, errorf(codeFailedToParse, "findAndModify: either an update or remove=true must be specified")
		}
		res, err := s.apply(ns, c, q, u, false, truthy(cmd.body.Lookup("upsert")))
		if err != nil {
			return nil, err
		}
		switch {
		case truthy(cmd.body.Lookup("new")):
			if res.after != nil {
				value = res.after
			}
		case res.before != nil:
			value = res.before
		}
		lastErr = bson.D{
			{Key: "n", Value: res.matched + int32(btoi(res.upserted != nil))},
			{Key: "updatedExisting", Value: res.matched > 0},
		}
		if res.upserted != nil {
			lastErr = append(lastErr, bson.E{Key: "upserted", Value: *res.upserted})
		}
	}
	if doc, ok := value.(bson.Raw); ok && proj != nil {
		if value, err = project(doc, proj); err != nil {
			return nil, err
		}
	}
	return bson.D{{Key: "lastErrorObject", Value: lastErr}, {Key: "value", Value: value}}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Server) count(cmd command) (bson.D, error) {
	_, docs, err := s.query(cmd, "query")
	if err != nil {
		return nil, err
	}
	skip, limit, err := skipLimit(cmd.body)
	if err != nil {
		return nil, err
	}
	if skip < 0 {
		return nil, errorf(codeIDLBadValue, "BSON field 'skip' value must be >= 0, actual value '%d'", skip)
	}
	if limit < 0 { // for count, limit and -limit mean the same
		limit = -limit
	}
	n := max(int64(len(docs))-skip, 0)
	if limit > 0 {
		n = min(n, limit)
	}
	return bson.D{{Key: "n", Value: int32(n)}}, nil
}

func (s *Server) aggregate(cmd command) (bson.D, error) {
	ns, err := s.ns(cmd)
	if err != nil {
		return nil, err
	}
	stages, err := cmd.docs("pipeline")
	if err != nil {
		return nil, err
	}
	curOpts, err := optDoc(cmd.body, "cursor")
	if err != nil {
		return nil, err
	}
	if curOpts == nil {
		return nil, errorf(codeFailedToParse, "aggregate: the cursor option is required")
	}
	docs := []bson.Raw(nil)
	if c := s.coll(ns, false); c != nil {
		docs = c.sorted()
	}
	for _, st := range stages {
		if docs, err = runStage(docs, st); err != nil {
			return nil, err
		}
	}
	batch, err := optInt(curOpts, "batchSize")
	if err != nil {
		return nil, err
	}
	if batch <= 0 {
		batch = defaultBatch
	}
	return s.cursorReply(ns, docs, int(batch), false, "firstBatch", 0), nil
}

// runStage runs one pipeline stage: $match, $skip, $limit, $count, or a
// $group whose _id is a constant, with $sum accumulators.
func runStage(docs []bson.Raw, stage bson.Raw) ([]bson.Raw, error) {
	es, err := elements(stage)
	if err != nil {
		return nil, err
	}
	if len(es) != 1 {
		return nil, errorf(codeBadValue, "a pipeline stage must have exactly one field")
	}
	name, arg := es[0].key, es[0].val
	switch name {
	case "$match":
		f, ok := arg.DocumentOK()
		if !ok {
			return nil, errorf(codeBadValue, "$match takes a document")
		}
		return keep(docs, f)
	case "$skip", "$limit":
		n, ok := arg.AsInt64OK()
		if !ok || n < 0 || (name == "$limit" && n == 0) {
			return nil, errorf(codeBadValue, "%s takes a positive number", name)
		}
		if name == "$skip" {
			return docs[min(int(n), len(docs)):], nil
		}
		return docs[:min(int(n), len(docs))], nil
	case "$count":
		field, ok := arg.StringValueOK()
		if !ok || field == "" {
			return nil, errorf(codeBadValue, "$count takes a field name")
		}
		if len(docs) == 0 {
			return nil, nil
		}
		d, err := bson.Marshal(bson.D{{Key: field, Value: int32(len(docs))}})
		return []bson.Raw{d}, err
	case "$group":
		return group(docs, arg)
	}
	return nil, errorf(codeUnknownStage, "Unrecognized pipeline stage name: '%s'", name)
}

func group(docs []bson.Raw, arg bson.RawValue) ([]bson.Raw, error) {
	spec, ok := arg.DocumentOK()
	if !ok {
		return nil, errorf(codeBadValue, "$group takes a document")
	}
	fields, err := elements(spec)
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 || fields[0].key != "_id" {
		return nil, errorf(codeBadValue, "$group requires an _id")
	}
	if s, ok := fields[0].val.StringValueOK(); ok && strings.HasPrefix(s, "$") {
		return nil, errorf(codeBadValue, "mongofake: $group by a field path is not supported")
	}
	if len(docs) == 0 {
		return nil, nil
	}
	out := []elem{fields[0]}
	for _, f := range fields[1:] {
		acc, ok := f.val.DocumentOK()
		if !ok {
			return nil, errorf(codeBadValue, "$group field %s must be an accumulator", f.key)
		}
		accs, err := elements(acc)
		if err != nil {
			return nil, err
		}
		var sum int64
		if len(accs) == 1 && accs[0].key == "$sum" {
			sum, ok = accs[0].val.AsInt64OK()
		}
		if !ok || len(accs) != 1 || accs[0].key != "$sum" {
			return nil, errorf(codeBadValue, "mongofake: only {$sum: <integer>} accumulators are supported")
		}
		total := sum * int64(len(docs))
		if total == int64(int32(total)) {
			out = append(out, elem{f.key, intValue(int32(total))})
		} else {
			out = append(out, elem{f.key, int64Value(total)})
		}
	}
	d, err := build(out)
	return []bson.Raw{d}, err
}

func mustMarshal(v any) []byte {
	b, err := bson.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (s *Server) createIndexes(cmd command) (bson.D, error) {
	ns, err := s.ns(cmd)
	if err != nil {
		return nil, err
	}
	specs, err := cmd.docs("indexes")
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 {
		return nil, errorf(codeBadValue, "createIndexes: must specify at least one index")
	}
	created := s.colls[ns] == nil
	c := s.coll(ns, true)
	before := len(c.indexes) + 1
	for _, spec := range specs {
		key, ok := spec.Lookup("key").DocumentOK()
		name, ok2 := spec.Lookup("name").StringValueOK()
		if !ok || !ok2 || name == "" {
			return nil, errorf(codeFailedToParse, "createIndexes: an index needs a key document and a name")
		}
		if name == "_id_" {
			continue
		}
		dup := false
		for _, old := range c.indexes {
			oldName := old.Lookup("name").StringValue()
			sameKey := equalDocs(old.Lookup("key").Document(), key)
			switch {
			case oldName == name && !sameKey:
				return nil, errorf(codeIndexKeySpecsConflict, "An existing index has the same name as the requested index. Requested index: %s, existing index: %s", spec, old)
			case oldName == name || sameKey:
				if compare(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: old}, bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: withV(spec)}) != 0 {
					return nil, errorf(codeIndexOptionsConflict, "An equivalent index already exists with a different name or options. Requested index: %s, existing index: %s", spec, old)
				}
				dup = true
			}
		}
		if !dup {
			c.indexes = append(c.indexes, withV(spec))
		}
	}
	return bson.D{
		{Key: "numIndexesBefore", Value: int32(before)},
		{Key: "numIndexesAfter", Value: int32(len(c.indexes) + 1)},
		{Key: "createdCollectionAutomatically", Value: created},
	}, nil
}

// withV returns an index spec as listIndexes shows it: {v: 2, key, name,
// options...}.
func withV(spec bson.Raw) bson.Raw {
	es, _ := elements(spec)
	out := []elem{{"v", intValue(2)}}
	for _, e := range es {
		if e.key != "v" {
			out = append(out, e)
		}
	}
	d, _ := build(out)
	return d
}

func (s *Server) listIndexes(cmd command) (bson.D, error) {
	ns, err := s.ns(cmd)
	if err != nil {
		return nil, err
	}
	c := s.coll(ns, false)
	if c == nil {
		return nil, errorf(codeNamespaceNotFound, "ns does not exist: %s", ns)
	}
	idx := mustMarshal(bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}})
	docs := append([]bson.Raw{idx}, c.indexes...)
	batch := int64(defaultBatch)
	if opts, err := optDoc(cmd.body, "cursor"); err == nil && opts != nil {
		if n, _ := optInt(opts, "batchSize"); n > 0 {
			batch = n
		}
	}
	return s.cursorReply(ns, docs, int(batch), false, "firstBatch", 0), nil
}

// findIndex returns the position in c.indexes of the index named by v (a
// name, or a key pattern), -1 if there is none.
func findIndex(c *collection, v bson.RawValue) int {
	for i, idx := range c.indexes {
		if name, ok := v.StringValueOK(); ok && idx.Lookup("name").StringValue() == name {
			return i
		}
		if key, ok := v.DocumentOK(); ok && equalDocs(idx.Lookup("key").Document(), key) {
			return i
		}
	}
	return -1
}

// isIDIndex reports whether v names the _id index, by name or key.
func isIDIndex(v bson.RawValue) bool {
	if name, ok := v.StringValueOK(); ok {
		return name == "_id_"
	}
	key, ok := v.DocumentOK()
	if !ok {
		return false
	}
	es, err := elements(key)
	if err != nil || len(es) != 1 || es[0].key != "_id" {
		return false
	}
	f, ok := es[0].val.AsFloat64OK()
	return ok && f == 1
}

func (s *Server) dropIndexes(cmd command) (bson.D, error) {
	ns, err := s.ns(cmd)
	if err != nil {
		return nil, err
	}
	c := s.coll(ns, false)
	if c == nil {
		return nil, errorf(codeNamespaceNotFound, "ns not found %s", ns)
	}
	before := len(c.indexes) + 1
	v := cmd.body.Lookup("index")
	if name, _ := v.StringValueOK(); name == "*" {
		c.indexes = nil
		return bson.D{{Key: "nIndexesWas", Value: int32(before)}}, nil
	}
	if isIDIndex(v) {
		return nil, errorf(codeInvalidOptions, "cannot drop _id index")
	}
	i := findIndex(c, v)
	if i < 0 {
		return nil, errorf(codeIndexNotFound, "index not found with name or key %s", v)
	}
	c.indexes = append(c.indexes[:i], c.indexes[i+1:]...)
	return bson.D{{Key: "nIndexesWas", Value: int32(before)}}, nil
}

// collMod supports one change: {index: {keyPattern or name,
// expireAfterSeconds}}.
func (s *Server) collMod(cmd command) (bson.D, error) {
	ns, err := s.ns(cmd)
	if err != nil {
		return nil, err
	}
	c := s.coll(ns, false)
	if c == nil {
		return nil, errorf(codeNamespaceNotFound, "ns does not exist: %s", ns)
	}
	spec, err := optDoc(cmd.body, "index")
	if err != nil || spec == nil {
		return nil, errorf(codeBadValue, "mongofake: collMod supports only the index option")
	}
	eas, err := spec.LookupErr("expireAfterSeconds")
	if err != nil {
		return nil, errorf(codeBadValue, "mongofake: collMod index supports only expireAfterSeconds")
	}
	by, err := spec.LookupErr("keyPattern")
	if err != nil {
		by, err = spec.LookupErr("name")
	}
	if err != nil {
		return nil, errorf(codeBadValue, "collMod: index needs a keyPattern or a name")
	}
	i := findIndex(c, by)
	if i < 0 {
		return nil, errorf(codeIndexNotFound, "cannot find index %s for ns %s", by, ns)
	}
	es, _ := elements(c.indexes[i])
	var old bson.RawValue
	set := false
	for j, e := range es {
		if e.key == "expireAfterSeconds" {
			old, es[j].val, set = e.val, eas, true
		}
	}
	if !set {
		es = append(es, elem{"expireAfterSeconds", eas})
	}
	if c.indexes[i], err = build(es); err != nil {
		return nil, err
	}
	reply := bson.D{}
	if old.Type != 0 {
		reply = append(reply, bson.E{Key: "expireAfterSeconds_old", Value: old})
	}
	return append(reply, bson.E{Key: "expireAfterSeconds_new", Value: eas}), nil
}

func (s *Server) drop(cmd command) (bson.D, error) {
	ns, err := s.ns(cmd)
	if err != nil {
		return nil, err
	}
	c := s.colls[ns]
	delete(s.colls, ns)
	if c == nil { // MongoDB 7 drops a missing collection without error
		return bson.D{}, nil
	}
	return bson.D{{Key: "nIndexesWas", Value: int32(len(c.indexes) + 1)}, {Key: "ns", Value: ns}}, nil
}

func (s *Server) dropDatabase(cmd command) (bson.D, error) {
	for ns := range s.colls {
		if db, _, _ := cut(ns, '.'); db == cmd.db {
			delete(s.colls, ns)
		}
	}
	return bson.D{}, nil
}

func (s *Server) listCollections(cmd command) (bson.D, error) {
	filter, err := optDoc(cmd.body, "filter")
	if err != nil {
		return nil, err
	}
	var names []string
	for ns := range s.colls {
		if db, name, _ := cut(ns, '.'); db == cmd.db {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	docs := make([]bson.Raw, len(names))
	for i, name := range names {
		docs[i] = mustMarshal(bson.D{
			{Key: "name", Value: name},
			{Key: "type", Value: "collection"},
			{Key: "options", Value: bson.D{}},
			{Key: "info", Value: bson.D{{Key: "readOnly", Value: false}}},
		})
	}
	if docs, err = keep(docs, filter); err != nil {
		return nil, err
	}
	return s.cursorReply(cmd.db+".$cmd.listCollections", docs, defaultBatch, false, "firstBatch", 0), nil
}
