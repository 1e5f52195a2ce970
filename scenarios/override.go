package scenarios

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// override applies one --set PATH=VALUE to the document rooted at root (see
// Parse for the syntax). Errors are *Error with File "--set" and Field the
// path as written.
func (d *decoder) override(root ast.Node, o string) error {
	path, value, ok := strings.Cut(o, "=")
	if !ok {
		return &Error{File: "--set", Msg: fmt.Sprintf("%q is not PATH=VALUE (e.g. workloads.0.arrival.rate=800)", o)}
	}
	fail := func(format string, args ...any) error {
		return &Error{File: "--set", Field: path, Msg: fmt.Sprintf(format, args...)}
	}
	segs := strings.Split(path, ".")
	if slices.Contains(segs, "") {
		return fail("malformed path %q: empty element (write keys and list indexes separated by single dots)", path)
	}
	v, err := overrideValue(value)
	if err != nil {
		return fail("value %q: %v", value, err)
	}

	node := root
	for i := 0; i < len(segs); i++ {
		at := strings.Join(segs[:i], ".")
		if at == "" {
			at = "the document"
		}
		node = unwrapAnchors(node)
		switch n := node.(type) {
		case *ast.MappingNode:
			key := segs[i]
			if i > 0 && segs[i-1] == "sysctls" {
				key = strings.Join(segs[i:], ".")
				i = len(segs) - 1
			}
			mv := findKey(n, key)
			if mv == nil && i < len(segs)-1 && d.merges(n, key, 0) {
				return fail("%s comes from a merge key (<<); --set can replace it whole but not change a field inside it", strings.Join(segs[:i+1], "."))
			}
			if mv == nil {
				rest, bad := nest(segs[i+1:], key, v)
				if rest == nil {
					return fail("%s does not exist, and --set does not create lists (index %s)", strings.Join(segs[:i+1], "."), bad)
				}
				mv = ast.MappingValue(newToken(":"), ast.String(newToken(key)), rest)
				n.Values = append(n.Values, mv)
				d.origin[mv] = path
				return nil
			}
			if i == len(segs)-1 {
				d.replace(&mv.Value, v, path)
				return nil
			}
			node = mv.Value
		case *ast.SequenceNode:
			idx, err := strconv.Atoi(segs[i])
			if err != nil || idx < 0 || segs[i] != strconv.Itoa(idx) {
				return fail("%s is a list; %q is not an index", at, segs[i])
			}
			if idx >= len(n.Values) {
				return fail("index %d is out of range: %s has %s", idx, at, entries(len(n.Values)))
			}
			if i == len(segs)-1 {
				d.replace(&n.Values[idx], v, path)
				return nil
			}
			node = n.Values[idx]
		case *ast.AliasNode:
			return fail("%s is an alias (*%s); --set cannot change a value through an alias, set the anchored value instead", at, aliasName(n))
		default:
			return fail("%s is %s, not a mapping or a list, so it has no %q", at, describe(n), segs[i])
		}
	}
	return nil // not reached: the last segment always returns above
}

// entries formats a list length for messages.
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return strconv.Itoa(n) + " entries"
}

// merges reports whether mapping m gets key from a merge key (<<: *base).
func (d *decoder) merges(m *ast.MappingNode, key string, depth int) bool {
	if depth > maxAliasHops {
		return false
	}
	for _, mv := range m.Values {
		if mv == nil {
			continue
		}
		if _, ok := mv.Key.(*ast.MergeKeyNode); !ok {
			continue
		}
		srcs := []ast.Node{d.resolve(mv.Value)}
		if seq, ok := srcs[0].(*ast.SequenceNode); ok {
			srcs = seq.Values
		}
		for _, src := range srcs {
			if sm, ok := d.resolve(src).(*ast.MappingNode); ok && (findKey(sm, key) != nil || d.merges(sm, key, depth+1)) {
				return true
			}
		}
	}
	return false
}

// resolve strips anchors and follows aliases; nil if an alias is dangling.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for range maxAliasHops {
		switch a := n.(type) {
		case *ast.AnchorNode:
			n = a.Value
		case *ast.AliasNode:
			an := d.anchorFor(a)
			if an == nil {
				return nil
			}
			n = an.Value
		default:
			return n
		}
	}
	return nil
}

// replace puts v in *slot, inside the anchor if *slot is anchored so that
// aliases of the anchor see the new value too.
func (d *decoder) replace(slot *ast.Node, v ast.Node, path string) {
	for {
		a, ok := (*slot).(*ast.AnchorNode)
		if !ok {
			break
		}
		slot = &a.Value
	}
	*slot = v
	d.origin[v] = path
}

// unwrapAnchors strips anchors from n.
func unwrapAnchors(n ast.Node) ast.Node {
	for {
		a, ok := n.(*ast.AnchorNode)
		if !ok {
			return n
		}
		n = a.Value
	}
}

// findKey returns the entry of m with the given key, if m spells it out
// (keys that come from a merge are not found: setting one adds it).
func findKey(m *ast.MappingNode, key string) *ast.MappingValueNode {
	for _, mv := range m.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		if k, err := keyText(mv.Key); err == nil && k == key {
			return mv
		}
	}
	return nil
}

// nest wraps v in mappings for the path elements below a key that does not
// exist yet (sysctls.net.ipv4.x builds sysctls: {net.ipv4.x: v}). Lists are
// not created: for a list index it returns nil and the index.
func nest(segs []string, parent string, v ast.Node) (ast.Node, string) {
	if len(segs) == 0 {
		return v, ""
	}
	if _, err := strconv.Atoi(segs[0]); err == nil {
		return nil, segs[0]
	}
	key, rest := segs[0], segs[1:]
	if parent == "sysctls" {
		key, rest = strings.Join(segs, "."), nil
	}
	inner, bad := nest(rest, key, v)
	if inner == nil {
		return nil, bad
	}
	return ast.Mapping(newToken("{"), true, ast.MappingValue(newToken(":"), ast.String(newToken(key)), inner)), ""
}

// newToken makes a token for a node that --set adds; it has no position.
func newToken(s string) *token.Token {
	return &token.Token{Type: token.StringType, Value: s, Origin: s, Position: &token.Position{}}
}

// overrideValue parses an override's VALUE as one YAML scalar or flow
// value. An empty VALUE is null. Anchors and aliases are refused: they would
// refer to the file's anchors in ways that are hard to follow.
func overrideValue(s string) (ast.Node, error) {
	f, yerr := parseYAML("", []byte(s))
	if yerr != nil {
		return nil, errors.New(yerr.Msg)
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			return nil, fmt.Errorf("more than one YAML document")
		}
		body = doc.Body
	}
	if body == nil {
		return ast.Null(&token.Token{Type: token.NullType, Value: "null", Origin: "", Position: &token.Position{}}), nil
	}
	var refs bool
	walk(body, func(n ast.Node) {
		switch n.(type) {
		case *ast.AnchorNode, *ast.AliasNode:
			refs = true
		}
	})
	if refs {
		return nil, fmt.Errorf("anchors and aliases are not allowed in --set values")
	}
	return body, nil
}
