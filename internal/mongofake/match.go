package mongofake

import (
	"regexp"
	"sort"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

const (
	codeBadProjection      = 31254
	codeConflictingUpdates = 40
	codeUnsupported        = codeBadValue
)

func init() {
	codeNames[codeBadProjection] = "Location31254"
	codeNames[codeConflictingUpdates] = "ConflictingUpdateOperators"
}

// matches reports whether doc matches the query filter. A nil or empty
// filter matches every document. Every condition is evaluated, so that an
// invalid filter fails whatever the document.
func matches(doc, filter bson.Raw) (bool, error) {
	if len(filter) == 0 {
		return true, nil
	}
	es, err := elements(filter)
	if err != nil {
		return false, err
	}
	all := true
	for _, e := range es {
		ok, err := matchElem(doc, e)
		if err != nil {
			return false, err
		}
		all = all && ok
	}
	return all, nil
}

func matchElem(doc bson.Raw, e elem) (bool, error) {
	if strings.HasPrefix(e.key, "$") {
		switch e.key {
		case "$and", "$or", "$nor":
			return matchLogical(doc, e)
		case "$comment":
			return true, nil
		}
		return false, errorf(codeBadValue, "unknown top level operator: %s", e.key)
	}
	cands, found := lookup(doc, e.key)
	if ops, ok := operators(e.val); ok {
		return matchOps(cands, found, ops)
	}
	if e.val.Type == bson.TypeRegex {
		return matchRegex(cands, e.val)
	}
	return matchEq(cands, found, e.val), nil
}

func matchLogical(doc bson.Raw, e elem) (bool, error) {
	arr, ok := e.val.ArrayOK()
	if !ok {
		return false, errorf(codeBadValue, "%s must be an array", e.key)
	}
	vals, err := arr.Values()
	if err != nil {
		return false, err
	}
	if len(vals) == 0 {
		return false, errorf(codeBadValue, "%s must be a nonempty array", e.key)
	}
	some, all := false, true
	for _, v := range vals {
		sub, ok := v.DocumentOK()
		if !ok {
			return false, errorf(codeBadValue, "%s entries must be objects", e.key)
		}
		ok, err := matches(doc, sub)
		if err != nil {
			return false, err
		}
		some, all = some || ok, all && ok
	}
	switch e.key {
	case "$and":
		return all, nil
	case "$or":
		return some, nil
	}
	return !some, nil
}

// operators returns v's fields if v is an operator document such as
// {$gt: 1}: a document whose first field name starts with $.
func operators(v bson.RawValue) ([]elem, bool) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, false
	}
	es, err := elements(d)
	if err != nil || len(es) == 0 || !strings.HasPrefix(es[0].key, "$") {
		return nil, false
	}
	return es, true
}

// lookup returns the values a dotted path names in doc: the value, and
// the elements of an array value besides the array itself.
func lookup(doc bson.Raw, path string) ([]bson.RawValue, bool) {
	v, err := doc.LookupErr(strings.Split(path, ".")...)
	if err != nil {
		return nil, false
	}
	cands := []bson.RawValue{v}
	if arr, ok := v.ArrayOK(); ok {
		vals, _ := arr.Values()
		cands = append(cands, vals...)
	}
	return cands, true
}

func matchEq(cands []bson.RawValue, found bool, v bson.RawValue) bool {
	if v.Type == bson.TypeNull && !found {
		return true
	}
	for _, c := range cands {
		if compare(c, v) == 0 {
			return true
		}
	}
	return false
}

func matchOps(cands []bson.RawValue, found bool, ops []elem) (bool, error) {
	all := true
	for i, op := range ops {
		var ok bool
		var err error
		switch op.key {
		case "$eq":
			ok = matchEq(cands, found, op.val)
		case "$ne":
			ok = !matchEq(cands, found, op.val)
		case "$gt", "$gte", "$lt", "$lte":
			ok = matchRange(cands, op.key, op.val) ||
				(!found && op.val.Type == bson.TypeNull && (op.key == "$gte" || op.key == "$lte"))
		case "$in", "$nin":
			ok, err = matchIn(cands, found, op)
			if op.key == "$nin" {
				ok = !ok
			}
		case "$exists":
			ok = truthy(op.val) == found
		case "$regex":
			var re bson.RawValue
			if re, err = regexOf(op.val, ops); err == nil {
				ok, err = matchRegex(cands, re)
			}
		case "$options":
			if !hasKey(ops, "$regex") {
				err = errorf(codeBadValue, "$options needs a $regex")
			}
			ok = true
		case "$not":
			ok, err = matchNot(cands, found, op.val)
		default:
			if i > 0 && !strings.HasPrefix(op.key, "$") {
				err = errorf(codeBadValue, "unknown operator: %s", op.key)
			} else {
				err = errorf(codeUnsupported, "mongofake: unsupported query operator %s", op.key)
			}
		}
		if err != nil {
			return false, err
		}
		all = all && ok
	}
	return all, nil
}

func hasKey(es []elem, key string) bool {
	for _, e := range es {
		if e.key == key {
			return true
		}
	}
	return false
}

// matchRange applies a comparison operator; values of another type class
// never match (MongoDB's type bracketing).
func matchRange(cands []bson.RawValue, op string, v bson.RawValue) bool {
	for _, c := range cands {
		if typeOrder(c.Type) != typeOrder(v.Type) {
			continue
		}
		r := compare(c, v)
		switch {
		case op == "$gt" && r > 0, op == "$gte" && r >= 0, op == "$lt" && r < 0, op == "$lte" && r <= 0:
			return true
		}
	}
	return false
}

func matchIn(cands []bson.RawValue, found bool, op elem) (bool, error) {
	arr, ok := op.val.ArrayOK()
	if !ok {
		return false, errorf(codeBadValue, "%s needs an array", op.key)
	}
	vals, err := arr.Values()
	if err != nil {
		return false, err
	}
	for _, v := range vals {
		if v.Type == bson.TypeRegex {
			ok, err := matchRegex(cands, v)
			if err != nil || ok {
				return ok, err
			}
			continue
		}
		if matchEq(cands, found, v) {
			return true, nil
		}
	}
	return false, nil
}

func matchNot(cands []bson.RawValue, found bool, v bson.RawValue) (bool, error) {
	if v.Type == bson.TypeRegex {
		ok, err := matchRegex(cands, v)
		return !ok, err
	}
	ops, ok := operators(v)
	if !ok {
		return false, errorf(codeBadValue, "$not needs a regex or a document of operators")
	}
	ok, err := matchOps(cands, found, ops)
	return !ok, err
}

// regexOf returns the regular expression of {$regex: v, $options: o}.
func regexOf(v bson.RawValue, ops []elem) (bson.RawValue, error) {
	var pattern, options string
	switch v.Type {
	case bson.TypeRegex:
		pattern, options = v.Regex()
	case bson.TypeString:
		pattern = v.StringValue()
	default:
		return bson.RawValue{}, errorf(codeBadValue, "$regex has to be a string")
	}
	for _, o := range ops {
		if o.key == "$options" {
			s, ok := o.val.StringValueOK()
			if !ok {
				return bson.RawValue{}, errorf(codeBadValue, "$options has to be a string")
			}
			options = s
		}
	}
	t, b, err := bson.MarshalValue(bson.Regex{Pattern: pattern, Options: options})
	return bson.RawValue{Type: t, Value: b}, err
}

var regexps sync.Map // "options/pattern" → *regexp.Regexp

func compileRegex(pattern, options string) (*regexp.Regexp, error) {
	key := options + "/" + pattern
	if re, ok := regexps.Load(key); ok {
		return re.(*regexp.Regexp), nil
	}
	flags := ""
	for _, o := range options {
		switch o {
		case 'i', 'm', 's':
			flags += string(o)
		case 'u':
		default:
			return nil, errorf(codeUnsupported, "mongofake: unsupported regex option %q", o)
		}
	}
	expr := pattern
	if flags != "" {
		expr = "(?" + flags + ")" + pattern
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, errorf(codeBadValue, "Regular expression is invalid: %v", err)
	}
	regexps.Store(key, re)
	return re, nil
}

// matchRegex reports whether a string candidate matches the regex value re.
func matchRegex(cands []bson.RawValue, re bson.RawValue) (bool, error) {
	pattern, options := re.Regex()
	r, err := compileRegex(pattern, options)
	if err != nil {
		return false, err
	}
	for _, c := range cands {
		if c.Type == bson.TypeString || c.Type == bson.TypeSymbol {
			if r.MatchString(stringOf(c)) {
				return true, nil
			}
		}
	}
	return false, nil
}

// project applies an inclusion or exclusion projection of top-level
// fields to doc.
func project(doc, proj bson.Raw) (bson.Raw, error) {
	spec, err := elements(proj)
	if err != nil {
		return nil, err
	}
	fields := make(map[string]bool, len(spec))
	include, exclude := false, false
	keepID := true
	for _, p := range spec {
		if strings.Contains(p.key, ".") || strings.HasPrefix(p.key, "$") {
			return nil, errorf(codeUnsupported, "mongofake: unsupported projection of %q", p.key)
		}
		switch p.val.Type {
		case bson.TypeBoolean, bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		default:
			return nil, errorf(codeUnsupported, "mongofake: unsupported projection %s: %s", p.key, p.val)
		}
		in := truthy(p.val)
		if p.key == "_id" {
			keepID = in
			continue
		}
		fields[p.key] = in
		if in {
			include = true
		} else {
			exclude = true
		}
	}
	if include && exclude {
		return nil, errorf(codeBadProjection, "Cannot do exclusion on a field in inclusion projection")
	}
	es, err := elements(doc)
	if err != nil {
		return nil, err
	}
	out := es[:0:0]
	for _, e := range es {
		keep := !include // exclusion mode or only _id named
		if e.key == "_id" {
			keep = keepID
		} else if in, named := fields[e.key]; named {
			keep = in
		}
		if keep {
			out = append(out, e)
		}
	}
	return build(out)
}

// sortDocs sorts docs, stably, by a sort specification {field: 1 or -1}.
func sortDocs(docs []bson.Raw, spec bson.Raw) error {
	if len(spec) == 0 {
		return nil
	}
	keys, err := elements(spec)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if f, ok := k.val.AsFloat64OK(); !ok || (f != 1 && f != -1) {
			return errorf(codeBadValue, "mongofake: sort direction of %s must be 1 or -1", k.key)
		}
	}
	sort.SliceStable(docs, func(i, j int) bool {
		for _, k := range keys {
			path := strings.Split(k.key, ".")
			a, _ := docs[i].LookupErr(path...)
			b, _ := docs[j].LookupErr(path...)
			c := compare(a, b)
			if f, _ := k.val.AsFloat64OK(); f < 0 {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
	return nil
}
