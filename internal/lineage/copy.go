package lineage

import (
	"fmt"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// CopyFormat is how the rows of COPY ... TO STDOUT are written, as the
// statement's options say (PostgreSQL's defaults filled in).
type CopyFormat struct {
	Format    string // "text", "csv" or "binary"
	Delimiter string // one byte: tab in text, comma in csv
	Null      string // text: \N; csv: empty
	Quote     string // csv only: '"' unless set
	Escape    string // csv only: the quote unless set
	Header    bool
	// ForceQuote lists the columns csv quotes even when not needed;
	// ForceQuoteAll is FORCE_QUOTE *.
	ForceQuote    []string
	ForceQuoteAll bool
	Encoding      string // empty: the client encoding
}

// copyStmt: COPY ... TO STDOUT sends its rows to the client, so its
// columns are output; TO a file or program the rows leave through the
// server, which counts as a flow out (filter uses). COPY FROM reads no
// table data.
func (a *analyzer) copyStmt(c *pg.CopyStmt, res *Result) {
	if c.IsFrom {
		return
	}
	top := &scope{}
	var cols []column
	switch {
	case c.Query != nil:
		cols = a.queryNode(c.Query, top)
	case c.Relation != nil:
		r := a.rangeVar(c.Relation, top)
		cols = r.cols
		if len(c.Attlist) > 0 {
			cols = make([]column, 0, len(c.Attlist))
			for _, n := range c.Attlist {
				name := n.GetString_().GetSval()
				l, ok := r.lookup(name)
				if !ok {
					l = unresolved
				}
				cols = append(cols, column{name: name, l: l})
			}
		}
	default:
		cols = wildUnresolved()
	}
	if c.IsProgram || c.Filename != "" {
		a.filterCols(cols)
		return
	}
	f, err := copyOptions(c.Options)
	if err != nil {
		if a.err == nil {
			a.err = err
		}
		return
	}
	res.Copy = f
	outputs(res, cols)
}

func copyOptions(opts []*pg.Node) (*CopyFormat, error) {
	f := &CopyFormat{Format: "text"}
	set := map[string]bool{}
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			return nil, fmt.Errorf("lineage: COPY option the analyzer cannot read; remove it or ask an admin")
		}
		if err := f.option(d); err != nil {
			return nil, fmt.Errorf("lineage: COPY option %s: %w", d.Defname, err)
		}
		set[d.Defname] = true
	}
	switch f.Format {
	case "csv":
		if !set["delimiter"] {
			f.Delimiter = ","
		}
		if !set["quote"] {
			f.Quote = `"`
		}
		if !set["escape"] {
			f.Escape = f.Quote
		}
	case "text":
		if !set["delimiter"] {
			f.Delimiter = "\t"
		}
		if !set["null"] {
			f.Null = `\N`
		}
	}
	return f, nil
}

func (f *CopyFormat) option(d *pg.DefElem) error {
	var err error
	switch d.Defname {
	case "format":
		f.Format, err = defString(d)
		if err == nil && f.Format != "text" && f.Format != "csv" && f.Format != "binary" {
			err = fmt.Errorf("unknown format %q", f.Format)
		}
	case "delimiter":
		f.Delimiter, err = defString(d)
		if err == nil && len(f.Delimiter) != 1 {
			err = fmt.Errorf("delimiter must be one byte")
		}
	case "null":
		f.Null, err = defString(d)
	case "quote":
		f.Quote, err = defString(d)
	case "escape":
		f.Escape, err = defString(d)
	case "header":
		f.Header, err = defBool(d)
	case "encoding":
		f.Encoding, err = defString(d)
	case "force_quote":
		err = f.forceQuote(d)
	case "freeze", "force_not_null", "force_null", "default", "on_error", "log_verbosity", "convert_selectively":
		// COPY FROM options: PostgreSQL refuses them with TO.
	default:
		err = fmt.Errorf("not an option the gateway knows")
	}
	return err
}

func (f *CopyFormat) forceQuote(d *pg.DefElem) error {
	switch {
	case d.Arg.GetAStar() != nil:
		f.ForceQuoteAll = true
	case d.Arg.GetList() != nil:
		for _, n := range d.Arg.GetList().Items {
			f.ForceQuote = append(f.ForceQuote, n.GetString_().GetSval())
		}
	default:
		return fmt.Errorf("expected a column list or *")
	}
	return nil
}

func defString(d *pg.DefElem) (string, error) {
	switch {
	case d.Arg.GetString_() != nil:
		return d.Arg.GetString_().Sval, nil
	case d.Arg.GetInteger() != nil:
		return strconv.Itoa(int(d.Arg.GetInteger().Ival)), nil
	}
	return "", fmt.Errorf("expected a string")
}

func defBool(d *pg.DefElem) (bool, error) {
	if d.Arg == nil {
		return true, nil
	}
	if b := d.Arg.GetBoolean(); b != nil {
		return b.Boolval, nil
	}
	if i := d.Arg.GetInteger(); i != nil {
		return i.Ival != 0, nil
	}
	s, err := defString(d)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(s) {
	case "true", "on", "yes", "1", "match":
		return true, nil
	case "false", "off", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("expected a Boolean, got %q", s)
}
