package config

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits on what one file may make the decoder do. Aliases can make a small
// file expand into a huge tree (the "billion laughs"), and a broken file can
// produce an error per node; both are cut off with one clear error.
const (
	maxNodes  = 200_000
	maxErrors = 100
)

// decoder walks a yaml.Node tree into the Config structs by their yaml tags,
// recording the line of every key path so later checks can name it.
type decoder struct {
	file  string
	errs  []*Error
	lines map[string]int  // key path -> line of the key (or sequence item)
	set   map[string]bool // key paths given a non-null value
	bad   map[string]bool // key paths whose value could not be decoded
	nodes int             // nodes visited, against maxNodes
	// dropped counts errors past maxErrors, reported as one line.
	dropped int
	// tooBig is set when the node budget ran out; it is then the only
	// error reported, since the rest of the tree was not read.
	tooBig *Error
}

func newDecoder(file string) *decoder {
	return &decoder{
		file:  file,
		lines: map[string]int{},
		set:   map[string]bool{},
		bad:   map[string]bool{},
	}
}

// errAt records an error at an explicit line.
func (d *decoder) errAt(line int, path, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		d.dropped++
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: path, Msg: fmt.Sprintf(format, args...)})
}

// result returns the errors found, ordered by line, or nil.
func (d *decoder) result() error {
	if d.tooBig != nil {
		return Errors{d.tooBig}
	}
	if len(d.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	out := Errors(d.errs)
	if d.dropped > 0 {
		out = append(out, &Error{File: d.file, Msg: fmt.Sprintf("and %d more problems; fix the ones above first", d.dropped)})
	}
	return out
}

// badValue records that the value at path is unusable, so later checks do
// not pile a second error onto it.
func (d *decoder) badValue(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.errAt(n.Line, path, format, args...)
}

var durationType = reflect.TypeFor[time.Duration]()

// value decodes n into v. path names v for errors.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	n = d.resolve(n, path)
	if n == nil || isNull(n) {
		return
	}
	d.set[path] = true
	switch {
	case v.Type() == durationType:
		d.duration(n, v, path)
	case v.Kind() == reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case v.Kind() == reflect.Int:
		d.integer(n, v, path)
	case v.Kind() == reflect.Bool:
		d.boolean(n, v, path)
	case v.Kind() == reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		d.value(n, v.Elem(), path)
	case v.Kind() == reflect.Slice:
		d.sequence(n, v, path)
	case v.Kind() == reflect.Map:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Struct:
		d.structure(n, v, path)
	default:
		// Only reachable if a field of an unsupported type is added to the
		// structs; refuse rather than silently ignore the key.
		d.badValue(n, path, "cannot be set from the file (unsupported type %s)", v.Type())
	}
}

// resolve follows aliases and counts nodes. It returns nil when the node
// budget is spent.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops > 100 {
			d.badValue(n, path, "alias chain is too long")
			return nil
		}
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	d.nodes++
	if d.nodes == maxNodes {
		d.tooBig = &Error{File: d.file, Line: n.Line, Key: path,
			Msg: fmt.Sprintf("the file expands to more than %d values (through aliases?); write it out plainly", maxNodes)}
	}
	if d.nodes >= maxNodes {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindName describes a node for "must be X, not Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a value"
	}
}

func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.badValue(n, path, "must be %s, not %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, "a duration")
	if !ok {
		return
	}
	dur, err := parseDuration(s)
	switch {
	case err == errDuration:
		d.badValue(n, path, "%v, not %q", err, clip(s))
		return
	case err != nil:
		d.badValue(n, path, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, "a whole number")
	if !ok {
		return
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil || n.ShortTag() != "!!int" || int64(int(i)) != i {
		d.badValue(n, path, "must be a whole number, not %q", clip(s))
		return
	}
	v.SetInt(i)
}

func (d *decoder) boolean(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, "true or false")
	if !ok {
		return
	}
	if n.ShortTag() != "!!bool" {
		d.badValue(n, path, "must be true or false, not %q", clip(s))
		return
	}
	b, err := strconv.ParseBool(strings.ToLower(s))
	if err != nil {
		d.badValue(n, path, "must be true or false, not %q", clip(s))
		return
	}
	v.SetBool(b)
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.badValue(n, path, "must be a list (write [a, b] or one \"- item\" per line), not %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		d.value(item, s.Index(i), p)
	}
	v.Set(s)
}

// mapping decodes a map with string keys (identity.roles).
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	pairs, ok := d.pairs(n, path)
	if !ok {
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(pairs))
	for _, p := range pairs {
		kp := joinKey(path, p.key)
		d.lines[kp] = p.line
		ev := reflect.New(v.Type().Elem()).Elem()
		d.value(p.val, ev, kp)
		m.SetMapIndex(reflect.ValueOf(p.key), ev)
	}
	v.Set(m)
}

// structure decodes a mapping into a struct by its fields' yaml tags.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	pairs, ok := d.pairs(n, path)
	if !ok {
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range pairs {
		kp := joinKey(path, p.key)
		d.lines[kp] = p.line
		idx, known := fields[p.key]
		if !known && path == "" && strings.HasPrefix(p.key, "x-") {
			continue // x-* top-level keys hold YAML anchors for reuse; see doc.go
		}
		if !known {
			d.unknownKey(p, kp, fields)
			continue
		}
		d.value(p.val, v.Field(idx), kp)
	}
}

func (d *decoder) unknownKey(p pair, path string, fields map[string]int) {
	d.bad[path] = true
	if _, isSecret := fields[p.key+"_env"]; isSecret {
		// Never echo the value: it is a secret.
		d.errAt(p.line, path, "secrets do not belong in the file; put it in an environment variable and name the variable with %s_env", p.key)
		return
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	if s := suggest(p.key, names); s != "" {
		d.errAt(p.line, path, "unknown key (did you mean %s?)", s)
		return
	}
	d.errAt(p.line, path, "unknown key (known keys here: %s)", strings.Join(names, ", "))
}

// fieldsOf maps yaml key -> field index for the fields the file may set.
func fieldsOf(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			out[tag] = i
		}
	}
	return out
}

// joinKey appends a mapping key to a path, quoting keys that would make the
// path ambiguous.
func joinKey(path, key string) string {
	if !plainKey(key) {
		return fmt.Sprintf("%s[%s]", path, strconv.Quote(clip(key)))
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// clip shortens a value quoted back in an error, so a huge value does not
// make a huge message.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max]) + "..."
}
