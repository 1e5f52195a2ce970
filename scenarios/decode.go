package scenarios

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/portsim/portsim/alloc"
)

// The scenario is decoded by walking the goccy/go-yaml AST rather than with
// yaml.Unmarshal into structs. Walking is strict by construction (a key the
// schema does not name is an error) and it knows, for every value, both its
// position in the file and its field path, so that type errors, unknown keys
// and semantic errors all come out as the same one-line *Error. It also lets
// a field's meaning depend on a sibling (arrival.process, hold.dist) and
// refuses durations written without a unit ("60" would otherwise decode as
// 60 ns).

// decoder holds what the walk needs besides the node at hand.
type decoder struct {
	file string
	// anchors are the document's anchors in document order, for aliases.
	anchors []*ast.AnchorNode
	// origin maps the nodes that --set put into the document to the
	// override's path, so that errors in them point at the override.
	origin map[ast.Node]string
	// Once the hosts are decoded (see lookupHost): hostIndex is a host's
	// index by Name, groupIndex the first instance of a host written with
	// count > 1 by its written name, hostAddr the first host with each
	// address.
	hostIndex, groupIndex map[string]int
	hostAddr              map[netip.Addr]int
}

// val is one YAML value on its way to a Go value: the node with anchors and
// aliases resolved, its field path, and the override that supplied it ("" if
// it comes from the file).
type val struct {
	node ast.Node
	path string
	set  string
}

// maxAliasHops bounds alias and merge resolution, which a malicious file
// could otherwise send round in a cycle (a: &a {<<: *a}).
const maxAliasHops = 64

// fail returns an *Error for v's field positioned at v's node.
func (d *decoder) fail(v val, format string, args ...any) error {
	return d.failAt(v, v.path, startToken(v.node), format, args...)
}

// failAt returns an *Error for field path at token tk, or for the override
// that supplied v.
func (d *decoder) failAt(v val, path string, tk *token.Token, format string, args ...any) error {
	e := &Error{File: d.file, Field: path, Msg: fmt.Sprintf(format, args...)}
	if v.set != "" {
		e.File = "--set"
		return e
	}
	if tk != nil && tk.Position != nil {
		e.Line, e.Column = tk.Position.Line, tk.Position.Column
	}
	return e
}

// startToken is the token where n begins in the source: the first key of a
// block mapping (goccy positions a block mapping at its first colon), the
// node's own token otherwise (the opening bracket or dash of a sequence).
func startToken(n ast.Node) *token.Token {
	switch n := n.(type) {
	case nil:
		return nil
	case *ast.MappingNode:
		if !n.IsFlowStyle && len(n.Values) > 0 && n.Values[0].Key != nil {
			return n.Values[0].Key.GetToken()
		}
		return n.Start
	}
	return n.GetToken()
}

// child makes the val for node n found at path below parent, resolving
// anchors and aliases.
func (d *decoder) child(parent val, n ast.Node, path string) (val, error) {
	v := val{node: n, path: path, set: parent.set}
	for range maxAliasHops {
		if o, ok := d.origin[v.node]; ok {
			v.set = o
		}
		switch n := v.node.(type) {
		case *ast.AnchorNode:
			v.node = n.Value
		case *ast.AliasNode:
			a := d.anchorFor(n)
			if a == nil {
				return v, d.fail(v, "alias *%s has no anchor &%s before it", aliasName(n), aliasName(n))
			}
			v.node = a.Value
		case *ast.TagNode:
			tag := ""
			if n.Start != nil {
				tag = n.Start.Value
			}
			return v, d.fail(v, "YAML tags such as %s are not supported; write the plain value", tag)
		default:
			return v, nil
		}
	}
	return v, d.fail(v, "aliases nest more than %d deep", maxAliasHops)
}

// aliasName is the name an alias refers to.
func aliasName(a *ast.AliasNode) string {
	if a.Value == nil || a.Value.GetToken() == nil {
		return ""
	}
	return a.Value.GetToken().Value
}

// anchorFor finds the anchor an alias refers to: the last anchor of that
// name defined before the alias (YAML lets a name be redefined).
func (d *decoder) anchorFor(a *ast.AliasNode) *ast.AnchorNode {
	name := aliasName(a)
	var found *ast.AnchorNode
	for _, an := range d.anchors {
		if an.Name == nil || an.Name.GetToken() == nil || an.Name.GetToken().Value != name {
			continue
		}
		if !before(an.Start, a.Start) {
			break
		}
		found = an
	}
	return found
}

// before reports whether token a starts before token b in the file.
func before(a, b *token.Token) bool {
	if a == nil || b == nil || a.Position == nil || b.Position == nil {
		return false
	}
	pa, pb := a.Position, b.Position
	return pa.Line < pb.Line || pa.Line == pb.Line && pa.Column < pb.Column
}

// collectAnchors lists the anchors below n in document order.
func collectAnchors(n ast.Node) []*ast.AnchorNode {
	var as []*ast.AnchorNode
	walk(n, func(n ast.Node) {
		if a, ok := n.(*ast.AnchorNode); ok {
			as = append(as, a)
		}
	})
	return as
}

// walk calls fn for n and every value node below it in document order. It
// is ast.Walk without comments and without tripping over nil children.
func walk(n ast.Node, fn func(ast.Node)) {
	if n == nil {
		return
	}
	fn(n)
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, mv := range n.Values {
			if mv != nil {
				walk(mv.Key, fn)
				walk(mv.Value, fn)
			}
		}
	case *ast.SequenceNode:
		for _, e := range n.Values {
			walk(e, fn)
		}
	case *ast.AnchorNode:
		walk(n.Value, fn)
	case *ast.TagNode:
		walk(n.Value, fn)
	case *ast.MappingKeyNode:
		walk(n.Value, fn)
	}
}

// describe names what a node holds, for "must be X, got Y" messages.
func describe(n ast.Node) string {
	switch n := n.(type) {
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing (null)"
	case *ast.StringNode:
		return strconv.Quote(n.Value)
	case *ast.LiteralNode:
		return "a block string"
	case nil:
		return "nothing"
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return n.Type().String()
}

// isNull reports whether n is YAML null (written, ~, or left empty).
func isNull(n ast.Node) bool {
	_, ok := n.(*ast.NullNode)
	return n == nil || ok
}

// fields is a decoded mapping: the present, non-null entries by key.
type fields struct {
	d      *decoder
	parent val
	vals   map[string]val
	// keys position the key of each entry, for "does not apply" errors.
	keys map[string]val
	// order is the keys in the order written (merged keys last).
	order []string
	// choice is the variant the mapping's selector chose, e.g. "process
	// poisson", once decoder.variant has decoded it.
	choice string
}

// fields decodes v as a mapping whose keys must be among known (any key
// when known is nil). Null values count as absent. Merge keys (<<: *base)
// are honoured: keys written in the mapping win over merged ones.
func (d *decoder) fields(v val, known ...string) (*fields, error) {
	m, ok := v.node.(*ast.MappingNode)
	if !ok {
		return nil, d.fail(v, "must be a mapping, got %s", describe(v.node))
	}
	f := &fields{d: d, parent: v, vals: map[string]val{}, keys: map[string]val{}}
	seen := map[*ast.MappingNode]bool{}
	if err := f.add(v, m, known, seen, 0); err != nil {
		return nil, err
	}
	return f, nil
}

// add adds the entries of m (m is v's mapping or one merged into it).
// Entries already present are kept: the mapping's own entries come first,
// then merged ones in order. seen stops a mapping being merged twice.
func (f *fields) add(v val, m *ast.MappingNode, known []string, seen map[*ast.MappingNode]bool, depth int) error {
	d := f.d
	if seen[m] {
		return nil
	}
	seen[m] = true
	if depth > maxAliasHops {
		return d.fail(v, "merge keys nest more than %d deep", maxAliasHops)
	}
	var merges []val
	for _, mv := range m.Values {
		if mv == nil {
			continue
		}
		entry := v
		if o, ok := d.origin[mv]; ok {
			entry.set = o
		}
		if mv.Key == nil {
			return d.fail(entry, "mapping entry without a key")
		}
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			mval, err := d.child(entry, mv.Value, v.path)
			if err != nil {
				return err
			}
			merges = append(merges, mval)
			continue
		}
		key, err := keyText(mv.Key)
		if err != nil {
			return d.failAt(entry, v.path, mv.Key.GetToken(), "%v", err)
		}
		path := joinPath(f.parent.path, key)
		kv := val{node: mv.Key, path: path, set: entry.set}
		if known != nil && !slices.Contains(known, key) {
			return d.fail(kv, "unknown field %q (known: %s)", key, strings.Join(known, ", "))
		}
		if _, dup := f.keys[key]; dup {
			continue // an earlier mapping in the merge order set it
		}
		cv, err := d.child(entry, mv.Value, path)
		if err != nil {
			return err
		}
		f.keys[key] = kv
		if isNull(cv.node) {
			continue
		}
		f.vals[key] = cv
		f.order = append(f.order, key)
	}
	for _, mval := range merges {
		var srcs []val
		switch n := mval.node.(type) {
		case *ast.MappingNode:
			srcs = []val{mval}
		case *ast.SequenceNode:
			for _, e := range n.Values {
				ev, err := d.child(mval, e, mval.path)
				if err != nil {
					return err
				}
				srcs = append(srcs, ev)
			}
		}
		if len(srcs) == 0 {
			return d.fail(mval, "merge key << needs a mapping or a list of mappings, got %s", describe(mval.node))
		}
		for _, s := range srcs {
			sm, ok := s.node.(*ast.MappingNode)
			if !ok {
				return d.fail(s, "merge key << needs a mapping or a list of mappings, got %s", describe(s.node))
			}
			if err := f.add(s, sm, known, seen, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyText is a mapping key as text; only scalar keys are allowed.
func keyText(k ast.MapKeyNode) (string, error) {
	switch k := k.(type) {
	case *ast.StringNode:
		return k.Value, nil
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode,
		*ast.InfinityNode, *ast.NanNode:
		if tk := k.GetToken(); tk != nil {
			return tk.Value, nil
		}
	}
	return "", fmt.Errorf("mapping keys must be plain names, got %s", describe(k))
}

// joinPath appends a key to a field path.
func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// get returns the named field if present and not null.
func (f *fields) get(name string) (val, bool) {
	v, ok := f.vals[name]
	return v, ok
}

// required returns the named field or an error positioned at the mapping.
func (f *fields) required(name, why string) (val, error) {
	if v, ok := f.vals[name]; ok {
		return v, nil
	}
	return val{}, f.d.failAt(f.parent, joinPath(f.parent.path, name), startToken(f.parent.node), "missing; %s", why)
}

// list decodes v as a sequence.
func (d *decoder) list(v val) ([]val, error) {
	s, ok := v.node.(*ast.SequenceNode)
	if !ok {
		return nil, d.fail(v, "must be a list, got %s", describe(v.node))
	}
	out := make([]val, 0, len(s.Values))
	for i, n := range s.Values {
		c, err := d.child(v, n, fmt.Sprintf("%s[%d]", v.path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// str decodes a string (plain, quoted or block).
func (d *decoder) str(v val) (string, error) {
	switch n := v.node.(type) {
	case *ast.StringNode:
		return n.Value, nil
	case *ast.LiteralNode:
		if n.Value != nil {
			return n.Value.Value, nil
		}
		return "", nil
	}
	return "", d.fail(v, "must be a string, got %s", describe(v.node))
}

// boolean decodes true or false.
func (d *decoder) boolean(v val) (bool, error) {
	if n, ok := v.node.(*ast.BoolNode); ok {
		return n.Value, nil
	}
	return false, d.fail(v, "must be true or false, got %s", describe(v.node))
}

// scalarText is the text of a string or an integer as written, for sysctl
// values ("32768 60999", 1).
func (d *decoder) scalarText(v val) (string, error) {
	switch n := v.node.(type) {
	case *ast.StringNode:
		return n.Value, nil
	case *ast.IntegerNode:
		return n.Token.Value, nil
	}
	return "", d.fail(v, "must be a string or an integer, got %s", describe(v.node))
}

// number decodes a finite number (integer or float).
func (d *decoder) number(v val) (float64, error) {
	switch n := v.node.(type) {
	case *ast.IntegerNode:
		switch x := n.Value.(type) {
		case int64:
			return float64(x), nil
		case uint64:
			return float64(x), nil
		}
	case *ast.FloatNode:
		if !math.IsInf(n.Value, 0) && !math.IsNaN(n.Value) {
			return n.Value, nil
		}
	case *ast.InfinityNode, *ast.NanNode:
		return 0, d.fail(v, "must be a finite number, got %s", describe(v.node))
	}
	return 0, d.fail(v, "must be a number, got %s", describe(v.node))
}

// uint64 decodes a non-negative integer.
func (d *decoder) uint64(v val) (uint64, error) {
	if n, ok := v.node.(*ast.IntegerNode); ok {
		switch x := n.Value.(type) {
		case uint64:
			return x, nil
		case int64:
			if x >= 0 {
				return uint64(x), nil
			}
		}
	}
	return 0, d.fail(v, "must be an integer from 0 to %d, got %s", uint64(math.MaxUint64), describe(v.node))
}

// duration decodes a Go duration string such as "100ms" or "60s". A bare 0
// is accepted; other bare numbers are refused because their unit is unknown.
func (d *decoder) duration(v val) (time.Duration, error) {
	switch n := v.node.(type) {
	case *ast.StringNode:
		t, err := time.ParseDuration(n.Value)
		if err == nil {
			return t, nil
		}
	case *ast.IntegerNode:
		if n.Token.Value == "0" {
			return 0, nil
		}
	}
	return 0, d.fail(v, "must be a duration with a unit such as \"100ms\" or \"60s\", got %s", describe(v.node))
}

// whole decodes a whole number from lo to hi (written as an integer, or a
// float with no fraction).
func (d *decoder) whole(v val, lo, hi int) (int, error) {
	n, err := d.number(v)
	if err != nil {
		return 0, err
	}
	if n < float64(lo) || n > float64(hi) || n != math.Trunc(n) {
		return 0, d.fail(v, "must be a whole number from %d to %d, got %v", lo, hi, n)
	}
	return int(n), nil
}

// valueText is a scalar's text as written ("30s", 100, true), for the
// settings a summary records.
func valueText(v val) string {
	if s, ok := v.node.(*ast.StringNode); ok {
		return s.Value
	}
	if tk := v.node.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// portRange decodes an inclusive port range "LOW HIGH" (alloc.ParseRange);
// the message is the range's problem, the field already names the value.
func (d *decoder) portRange(v val) (alloc.Range, error) {
	text, err := d.str(v)
	if err != nil {
		return alloc.Range{}, err
	}
	r, err := alloc.ParseRange(text)
	if err != nil {
		var re *alloc.RangeError
		if errors.As(err, &re) {
			err = re.Err
		}
		return r, d.fail(v, "%v", err)
	}
	return r, nil
}
