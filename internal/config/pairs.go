package config

import "gopkg.in/yaml.v3"

// pair is one key and value of a mapping.
type pair struct {
	key  string
	line int
	val  *yaml.Node
}

// pairs lists a mapping's entries in file order, with YAML merge keys (<<)
// expanded: an explicit key wins over a merged one. A key written twice is an
// error, since which one would win is not obvious to the reader.
func (d *decoder) pairs(n *yaml.Node, path string) ([]pair, bool) {
	if n.Kind != yaml.MappingNode {
		d.badValue(n, path, "must be a mapping of keys to values, not %s", kindName(n))
		return nil, false
	}
	var explicit, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSource(val, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.badValue(k, path, "keys must be plain words, not %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errAt(k.Line, joinKey(path, k.Value), "key is written twice (first on line %d); keep one", first)
			continue
		}
		seen[k.Value] = k.Line
		explicit = append(explicit, pair{key: k.Value, line: k.Line, val: val})
	}
	for _, m := range merged {
		if _, ok := seen[m.key]; !ok {
			seen[m.key] = m.line
			explicit = append(explicit, m)
		}
	}
	return explicit, true
}

// mergeSource returns the entries a merge key brings in: one mapping or a
// list of mappings (earlier ones win).
func (d *decoder) mergeSource(val *yaml.Node, path string) []pair {
	val = d.resolve(val, path)
	if val == nil {
		return nil
	}
	var sources []*yaml.Node
	switch val.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{val}
	case yaml.SequenceNode:
		for _, s := range val.Content {
			if s = d.resolve(s, path); s != nil {
				sources = append(sources, s)
			}
		}
	default:
		d.badValue(val, path, "a merge (<<) must name a mapping or a list of mappings")
		return nil
	}
	var out []pair
	seen := map[string]bool{}
	for _, s := range sources {
		if s.Kind != yaml.MappingNode {
			d.badValue(s, path, "a merge (<<) must name a mapping")
			return nil
		}
		for i := 0; i+1 < len(s.Content); i += 2 {
			k := s.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				d.badValue(k, path, "a merged mapping may not itself merge (<<) or use complex keys; write it out")
				return nil
			}
			if seen[k.Value] {
				continue
			}
			seen[k.Value] = true
			out = append(out, pair{key: k.Value, line: k.Line, val: s.Content[i+1]})
		}
	}
	return out
}
