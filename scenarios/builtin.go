package scenarios

import (
	"embed"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Default is the built-in scenario the CLI runs when none is named.
const Default = "linux-burst"

// builtinFS holds the built-in scenario library, one file per scenario,
// named NAME.yaml.
//
//go:embed builtin/*.yaml
var builtinFS embed.FS

// suiteFS holds the cross-check suite: small scenarios on loopback, a few
// seconds each, that `portsim crosscheck --suite` runs on the real kernel.
//
//go:embed crosscheck/*.yaml
var suiteFS embed.FS

// SuitePrefix starts the names of the cross-check suite's scenarios, which
// Load accepts as "crosscheck/NAME".
const SuitePrefix = "crosscheck/"

// Suite lists the cross-check suite's scenarios, sorted by name; each Name
// includes SuitePrefix.
func Suite() []Info {
	entries, _ := fs.ReadDir(suiteFS, "crosscheck") // embedded: cannot fail; sorted
	var out []Info
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			src, _ := suiteFS.ReadFile(SuitePrefix + e.Name())
			out = append(out, Info{Name: SuitePrefix + name, Description: description(src)})
		}
	}
	return out
}

// Info describes a built-in scenario: the name Load accepts and the
// one-line description of what the scenario shows.
type Info struct {
	Name, Description string
}

// Builtins lists the built-in scenarios sorted by name. It reads only the
// descriptions, so it works even where a built-in cannot be loaded (the
// "this-host" scenario needs /proc/sys).
func Builtins() []Info {
	var out []Info
	for _, name := range builtinNames() {
		src, _ := builtinFS.ReadFile(builtinPath(name))
		out = append(out, Info{Name: name, Description: description(src)})
	}
	return out
}

// builtinNames lists the names of the built-in scenarios, sorted.
func builtinNames() []string {
	entries, _ := fs.ReadDir(builtinFS, "builtin") // embedded: cannot fail; sorted by file name
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, name)
		}
	}
	return names
}

// builtinPath is where the built-in scenario name is in builtinFS.
func builtinPath(name string) string { return "builtin/" + name + ".yaml" }

// description returns the top-level description of a scenario document, ""
// if it has none.
func description(src []byte) string {
	f, err := parser.ParseBytes(src, 0)
	if err != nil || len(f.Docs) == 0 || f.Docs[0] == nil {
		return ""
	}
	m, ok := f.Docs[0].Body.(*ast.MappingNode)
	if !ok {
		return ""
	}
	mv := findKey(m, "description")
	if mv == nil {
		return ""
	}
	d := &decoder{}
	s, _ := d.str(val{node: mv.Value})
	return s
}

// Load reads a scenario by file path or built-in name and applies
// overrides (see Parse). An existing file wins over a built-in of the same
// name; a built-in's Scenario.File is "builtin:NAME". A name that is neither
// is an *Error listing the built-ins, and so is a file that cannot be read.
func Load(nameOrPath string, overrides []string) (*Scenario, error) {
	fi, err := os.Stat(nameOrPath)
	switch {
	case err == nil && fi.IsDir():
		return nil, &Error{File: nameOrPath, Msg: "is a directory, not a scenario file"}
	case err == nil:
		src, err := os.ReadFile(nameOrPath)
		if err != nil {
			return nil, &Error{File: nameOrPath, Msg: pathErrorText(err)}
		}
		return Parse(src, nameOrPath, overrides)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, &Error{File: nameOrPath, Msg: pathErrorText(err)}
	}
	if src, err := suiteFS.ReadFile(nameOrPath + ".yaml"); err == nil && strings.HasPrefix(nameOrPath, SuitePrefix) {
		return Parse(src, "builtin:"+nameOrPath, overrides)
	}
	if slices.Contains(builtinNames(), nameOrPath) {
		src, _ := builtinFS.ReadFile(builtinPath(nameOrPath))
		return Parse(src, "builtin:"+nameOrPath, overrides)
	}
	return nil, &Error{File: nameOrPath, Msg: "no such file or built-in scenario (built-ins: " + strings.Join(builtinNames(), ", ") + ")"}
}

// pathErrorText is an *fs.PathError's reason without the path, which the
// *Error already names.
func pathErrorText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
