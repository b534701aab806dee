package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxFileBytes bounds the file Load reads: a configuration is a few
// kilobytes, and anything this large is a wrong path, not a config.
const maxFileBytes = 4 << 20

// Load reads, completes and validates the configuration file at path. On
// any problem it returns Errors (every problem, one per line) and no Config.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the configuration: %w; pass --config with the path of your countersign.yaml", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the configuration %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, Errors{{File: filepath.Base(path), Msg: fmt.Sprintf("is larger than %d MiB; is this the right file?", maxFileBytes>>20)}}
	}
	return Parse(path, data)
}

// Parse is Load for bytes already read. name is the file's path: its base
// name appears in errors and relative paths in the file are resolved against
// its directory (the working directory when name has none).
func Parse(name string, data []byte) (*Config, error) {
	file := filepath.Base(name)
	if name == "" {
		file = "config"
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	root, perr := parseYAML(file, data)
	if perr != nil {
		return nil, Errors{perr}
	}
	d := newDecoder(file)
	d.lines[""] = root.Line
	c := &Config{Path: abs}
	d.value(root, reflect.ValueOf(c).Elem(), "")
	if d.tooBig == nil {
		k := &checker{decoder: d, c: c, dir: filepath.Dir(abs), lookupEnv: os.LookupEnv}
		k.run()
	}
	if err := d.result(); err != nil {
		return nil, err
	}
	return c, nil
}

var yamlErrLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// parseYAML returns the root node of the one document in data.
func parseYAML(file string, data []byte) (root *yaml.Node, err *Error) {
	defer func() {
		// yaml.v3 is third-party code fed untrusted bytes; a panic in it
		// must become an error, never a crashed gateway.
		if r := recover(); r != nil {
			root, err = nil, &Error{File: file, Msg: "is not valid YAML (the parser failed); check its indentation and quoting"}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if e := dec.Decode(&doc); e != nil {
		if errors.Is(e, io.EOF) {
			return nil, emptyFile(file)
		}
		return nil, yamlError(file, e)
	}
	var extra yaml.Node
	if e := dec.Decode(&extra); !errors.Is(e, io.EOF) {
		if e != nil {
			return nil, yamlError(file, e)
		}
		return nil, &Error{File: file, Line: extra.Line, Msg: "holds a second YAML document (after ---); keep the whole configuration in one"}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, emptyFile(file)
	}
	return doc.Content[0], nil
}

func emptyFile(file string) *Error {
	return &Error{File: file, Msg: "is empty; start from examples/countersign.yaml"}
}

func yamlError(file string, e error) *Error {
	msg := e.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: "not valid YAML: " + m[2]}
	}
	return &Error{File: file, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}
