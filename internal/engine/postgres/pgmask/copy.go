package pgmask

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/lineage"
	"github.com/countersign/countersign/internal/mask"
)

// copyState masks the rows of COPY ... TO STDOUT. COPY sends no
// RowDescription: the columns come from the statement's lineage, the row
// format from its options, and the types (for NULL versus masked text)
// from the catalog.
type copyState struct {
	codec *copyCodec
	plans map[int]*mask.Plan // by field count: a row of another width than the statement's is masked whole
	cols  []mask.Column
	r     *result
}

var errBinaryCopy = errors.New("binary COPY cannot be masked; use COPY ... TO STDOUT with FORMAT text or csv")

// CopyData masks the rows in one CopyData message, which may hold several
// rows or part of one; a partial row waits (bounded) for the next message.
func (r *result) CopyData(m *pgproto3.CopyData) error {
	if r.copy == nil {
		cs, err := r.newCopy()
		if err != nil {
			return err
		}
		r.copy = cs
	}
	if r.copy.codec == nil {
		return nil // nothing to mask
	}
	out, err := r.copy.codec.feed(m.Data, r.copy.mask)
	if err != nil {
		return err
	}
	m.Data = out
	return nil
}

func (r *result) newCopy() (*copyState, error) {
	ctx, cancel := lookupCtx()
	defer cancel()
	cat, err := r.m.catalog(r.res)
	if err != nil {
		return nil, fmt.Errorf("the catalog of %s could not be read to mask COPY rows: %w", r.res, err)
	}
	if r.stmts == nil {
		r.stmts = analyze(ctx, cat, r.op)
	}
	st := r.stmts.copyStmt()
	if st == nil {
		return nil, errors.New("the COPY statement could not be analyzed, so its rows cannot be masked; run one plain COPY ... TO STDOUT per query")
	}
	cs := &copyState{r: r, plans: map[int]*mask.Plan{}, cols: r.copyColumns(ctx, cat, st)}
	plan := r.rules.Plan(r.roles, cs.cols)
	if !plan.Active() {
		return cs, nil
	}
	if st.res.Copy.Format == "binary" {
		return nil, errBinaryCopy
	}
	cs.plans[len(cs.cols)] = plan
	cs.codec, err = newCopyCodec(st.res.Copy, cs.cols, r.m.o.MaxCopyRow)
	return cs, err
}

// copyColumns: a column is text when it is resolved and every column it
// is built from is of a text type; otherwise a masked value is NULL.
func (r *result) copyColumns(ctx context.Context, cat *resCatalog, st *stmtLineage) []mask.Column {
	cols := expandColumns(ctx, cat, st.res.ColumnsFor(len(st.res.Columns)))
	for i := range cols {
		c := &cols[i]
		text := c.Resolved
		for _, s := range c.Sources {
			k, err := cat.sourceKind(ctx, s)
			if err != nil {
				r.m.log.Warn("column type lookup failed; masked COPY values become NULL", "resource", r.res, "error", err)
			}
			if k == kindOther {
				text = false
			}
		}
		if !st.copyTable || computedFrom(*c) {
			*c = r.derived(*c)
		}
		c.Text = text
	}
	return cols
}

// computedFrom: a table's column computed from its other columns (a
// generated column, whose sources name them).
func computedFrom(c mask.Column) bool {
	for _, s := range c.Sources {
		if s.Column != c.Name {
			return true
		}
	}
	return false
}

func (cs *copyState) plan(n int) *mask.Plan {
	if p, ok := cs.plans[n]; ok {
		return p
	}
	p := cs.r.rules.Plan(cs.r.roles, make([]mask.Column, n))
	cs.plans[n] = p
	return p
}

// mask masks field i of a row of n fields. A scanned field whose decoded
// parts (hex bytea, a float's exponent form, grouped money: COPY writes
// them as the text output does) match is masked whole.
func (cs *copyState) mask(n, i int, v []byte, null bool) ([]byte, bool) {
	if null {
		return nil, true
	}
	p := cs.plan(n)
	if p.Scans(i) {
		if ex := textExtras(v); ex != nil && planDetects(p, i, ex) {
			if n == len(cs.cols) && cs.cols[i].Text {
				return []byte(mask.Redacted), false
			}
			return nil, true
		}
	}
	return p.Value(i, v)
}

// copyCodec splits COPY text or csv output into rows and fields, and
// writes masked rows back in the same format.
type copyCodec struct {
	csv        bool
	delim      byte
	quote      byte
	escape     byte
	null       []byte
	header     bool // the header line is still to come
	forceQuote []bool
	forceAll   bool
	pending    []byte
	max        int

	raw    [][]byte // per row, reused
	values [][]byte
	nulls  []bool
}

func newCopyCodec(f *lineage.CopyFormat, cols []mask.Column, max int) (*copyCodec, error) {
	c := &copyCodec{csv: f.Format == "csv", null: []byte(f.Null), header: f.Header, forceAll: f.ForceQuoteAll, max: max}
	if len(f.Delimiter) != 1 {
		return nil, fmt.Errorf("COPY delimiter %q is not one byte; it cannot be masked", f.Delimiter)
	}
	c.delim = f.Delimiter[0]
	if c.csv {
		if len(f.Quote) != 1 || len(f.Escape) != 1 {
			return nil, errors.New("COPY quote and escape must be one byte each to be masked")
		}
		c.quote, c.escape = f.Quote[0], f.Escape[0]
	}
	if f.Encoding != "" && !isUTF8Name(f.Encoding) {
		return nil, fmt.Errorf("COPY with ENCODING %q cannot be masked; leave ENCODING out", f.Encoding)
	}
	c.forceQuote = make([]bool, len(cols))
	for i, col := range cols {
		c.forceQuote[i] = slices.Contains(f.ForceQuote, col.Name)
	}
	return c, nil
}

func isUTF8Name(s string) bool {
	switch string(bytes.ToLower([]byte(s))) {
	case "utf8", "utf-8", "unicode":
		return true
	}
	return false
}

type maskFunc func(n, i int, v []byte, null bool) ([]byte, bool)

// feed masks every complete row in pending+data and keeps the rest.
func (c *copyCodec) feed(data []byte, mf maskFunc) ([]byte, error) {
	buf := data
	if len(c.pending) > 0 {
		buf = append(c.pending, data...)
		c.pending = nil
	}
	out := make([]byte, 0, len(buf)+16)
	for len(buf) > 0 {
		end := c.rowEnd(buf)
		if end < 0 {
			break
		}
		line := buf[:end]
		buf = buf[end+1:]
		if c.header {
			c.header = false
			out = append(append(out, line...), '\n')
			continue
		}
		out = c.row(out, line, mf)
	}
	if len(buf) > c.max {
		return nil, fmt.Errorf("a COPY row longer than %d bytes cannot be masked", c.max)
	}
	if len(buf) > 0 {
		c.pending = append([]byte(nil), buf...)
	}
	return out, nil
}

// rowEnd finds the newline that ends the first row: in text format every
// newline does (newlines in values are escaped); in csv only one outside
// quotes.
func (c *copyCodec) rowEnd(b []byte) int {
	if !c.csv {
		return bytes.IndexByte(b, '\n')
	}
	inQuote := false
	for i := 0; i < len(b); i++ {
		ch := b[i]
		switch {
		case inQuote && ch == c.escape && c.escape != c.quote && i+1 < len(b) && (b[i+1] == c.quote || b[i+1] == c.escape):
			i++
		case ch == c.quote:
			inQuote = !inQuote // a doubled quote toggles twice
		case ch == '\n' && !inQuote:
			return i
		}
	}
	return -1
}

// row masks one row (without its newline) and appends it to out. A field
// the mask leaves unchanged keeps its exact bytes.
func (c *copyCodec) row(out, line []byte, mf maskFunc) []byte {
	c.split(line)
	n := len(c.raw)
	for i := range c.raw {
		if i > 0 {
			out = append(out, c.delim)
		}
		v, null := mf(n, i, c.values[i], c.nulls[i])
		if null == c.nulls[i] && (null || bytes.Equal(v, c.values[i])) {
			out = append(out, c.raw[i]...)
			continue
		}
		out = c.encode(out, i, v, null)
	}
	return append(out, '\n')
}

func (c *copyCodec) split(line []byte) {
	c.raw, c.values, c.nulls = c.raw[:0], c.values[:0], c.nulls[:0]
	for {
		end := c.fieldEnd(line)
		f := line[:end]
		var v []byte
		var null bool
		if c.csv {
			v, null = c.decodeCSV(f)
		} else {
			v, null = c.decodeText(f)
		}
		c.raw, c.values, c.nulls = append(c.raw, f), append(c.values, v), append(c.nulls, null)
		if end == len(line) {
			return
		}
		line = line[end+1:]
	}
}

// fieldEnd finds the delimiter that ends the first field, or len(b).
func (c *copyCodec) fieldEnd(b []byte) int {
	inQuote := false
	for i := 0; i < len(b); i++ {
		ch := b[i]
		switch {
		case !c.csv && ch == '\\':
			i++ // the escaped byte may be the delimiter
		case c.csv && inQuote && ch == c.escape && c.escape != c.quote && i+1 < len(b) && (b[i+1] == c.quote || b[i+1] == c.escape):
			i++
		case c.csv && ch == c.quote:
			inQuote = !inQuote
		case ch == c.delim && !inQuote:
			return i
		}
	}
	return len(b)
}

func (c *copyCodec) decodeText(f []byte) ([]byte, bool) {
	if bytes.Equal(f, c.null) {
		return nil, true
	}
	if bytes.IndexByte(f, '\\') < 0 {
		return f, false
	}
	out := make([]byte, 0, len(f))
	for i := 0; i < len(f); i++ {
		ch := f[i]
		if ch != '\\' || i+1 == len(f) {
			out = append(out, ch)
			continue
		}
		i++
		switch e := f[i]; e {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'x':
			v, n := digits(f[i+1:], 16, 2)
			if n == 0 {
				out = append(out, 'x')
				continue
			}
			out = append(out, byte(v))
			i += n
		default:
			if e >= '0' && e <= '7' {
				v, n := digits(f[i:], 8, 3)
				out = append(out, byte(v))
				i += n - 1
				continue
			}
			out = append(out, e)
		}
	}
	return out, false
}

func digits(b []byte, base, max int) (int, int) {
	v, n := 0, 0
	for n < max && n < len(b) {
		d := digitVal(b[n])
		if d < 0 || d >= base {
			break
		}
		v = v*base + d
		n++
	}
	return v, n
}

func digitVal(ch byte) int {
	switch {
	case ch >= '0' && ch <= '9':
		return int(ch - '0')
	case ch >= 'a' && ch <= 'f':
		return int(ch-'a') + 10
	case ch >= 'A' && ch <= 'F':
		return int(ch-'A') + 10
	}
	return -1
}

func (c *copyCodec) decodeCSV(f []byte) ([]byte, bool) {
	if bytes.IndexByte(f, c.quote) < 0 {
		if bytes.Equal(f, c.null) {
			return nil, true
		}
		return f, false
	}
	out := make([]byte, 0, len(f))
	inQuote := false
	for i := 0; i < len(f); i++ {
		ch := f[i]
		switch {
		case inQuote && ch == c.escape && i+1 < len(f) && (f[i+1] == c.quote || f[i+1] == c.escape) && (c.escape != c.quote || f[i+1] == c.quote):
			out = append(out, f[i+1])
			i++
		case ch == c.quote:
			inQuote = !inQuote
		default:
			out = append(out, ch)
		}
	}
	return out, false
}

func (c *copyCodec) encode(out []byte, i int, v []byte, null bool) []byte {
	if null {
		return append(out, c.null...)
	}
	if c.csv {
		return c.encodeCSV(out, i, v)
	}
	for _, ch := range v {
		switch ch {
		case '\\':
			out = append(out, '\\', '\\')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\v':
			out = append(out, '\\', 'v')
		default:
			if ch == c.delim {
				out = append(out, '\\')
			}
			out = append(out, ch)
		}
	}
	return out
}

func (c *copyCodec) encodeCSV(out []byte, i int, v []byte) []byte {
	quote := c.forceAll || (i < len(c.forceQuote) && c.forceQuote[i]) || bytes.Equal(v, c.null) ||
		bytes.ContainsAny(v, string([]byte{c.delim, c.quote, '\n', '\r'})) || (c.escape != c.quote && bytes.IndexByte(v, c.escape) >= 0)
	if !quote {
		return append(out, v...)
	}
	out = append(out, c.quote)
	for _, ch := range v {
		if ch == c.quote || ch == c.escape {
			out = append(out, c.escape)
		}
		out = append(out, ch)
	}
	return append(out, c.quote)
}
