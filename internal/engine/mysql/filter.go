package mysql

// ResultFilter sees every result set of one operation before the client
// does; masking plugs in here. Rows stream through one at a time and a
// filter must not keep them. An error ends the session: a result that
// cannot be filtered is not shown.
type ResultFilter interface {
	// Columns is called once per result set with its column definitions.
	// cols may be shared with other result sets: it must not be changed.
	Columns(cols []Column) error
	// TextRow may rewrite the values of a text-protocol row in place (nil
	// is NULL); the gateway re-encodes the row whole.
	TextRow(values [][]byte) error
	// BinaryRow sees a binary-protocol row (COM_STMT_EXECUTE) as its raw
	// payload and returns the payload to send, which may be the same.
	BinaryRow(payload []byte) ([]byte, error)
	// ErrorMessage sees the message of an ERR packet the upstream sent for
	// the operation and returns the message to send.
	ErrorMessage(code uint16, msg []byte) []byte
	// Active reports whether the filter can change anything in the rows of
	// the current result set; when it cannot, rows pass unparsed.
	Active() bool
}

// Column is one column definition, as the upstream described it: OrgTable
// and OrgName give the lineage of a plain column; both are empty for a
// computed one.
type Column struct {
	Schema, Table, OrgTable, Name, OrgName string
	Type                                   byte
	Flags                                  uint16
}

// viewAware is implemented by a filter that needs to know which relations
// are views (their column definitions name the view, not the table the
// value comes from). The engine hands it a lookup before the first result.
type viewAware interface {
	setViews(views *viewLookup)
}

// parseColumn decodes a ColumnDefinition41 payload.
func parseColumn(p []byte) (Column, bool) {
	cur := &cursor{b: p}
	cur.lenencBytes() // catalog
	col := Column{Schema: string(cur.lenencBytes())}
	// The alias and the original name are mostly the same: one string then.
	col.Table, col.OrgTable = twoStrings(cur.lenencBytes(), cur.lenencBytes())
	col.Name, col.OrgName = twoStrings(cur.lenencBytes(), cur.lenencBytes())
	cur.lenenc() // length of the fixed fields (0x0c)
	cur.u16()    // character set
	cur.u32()    // column length
	col.Type = cur.u8()
	col.Flags = cur.u16()
	return col, !cur.bad
}

// twoStrings converts a and b, sharing one string when they are equal.
func twoStrings(a, b []byte) (string, string) {
	s := string(a)
	if string(b) == s {
		return s, s
	}
	return s, string(b)
}

// parseTextRow splits a text-protocol row into its values (nil for NULL).
func parseTextRow(p []byte, n int) ([][]byte, bool) {
	cur := &cursor{b: p}
	vals := make([][]byte, n)
	for i := range vals {
		if len(cur.b) > 0 && cur.b[0] == 0xfb {
			cur.b = cur.b[1:]
			continue
		}
		vals[i] = cur.lenencBytes()
		if vals[i] == nil && !cur.bad {
			vals[i] = []byte{}
		}
	}
	return vals, !cur.bad && len(cur.b) == 0
}

// appendTextRow encodes values as a text-protocol row, every length prefix
// rebuilt.
func appendTextRow(dst []byte, vals [][]byte) []byte {
	for _, v := range vals {
		if v == nil {
			dst = append(dst, 0xfb)
			continue
		}
		dst = appendLenenc(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// columnNamer is implemented by a filter that may rewrite the names in a
// column definition before the client sees it: a statement built at run
// time (EXECUTE IMMEDIATE CONCAT('SELECT ', QUOTE(@v))) names its columns
// and tables after data.
type columnNamer interface {
	// ColumnDefinition returns the ColumnDefinition41 payload to send
	// for p, which may be p itself.
	ColumnDefinition(p []byte) []byte
	// ColumnName is the name to show (to the recording) for a column's.
	ColumnName(name string) string
}

// maskColumnDef passes one column definition through the operation's
// filter, if it renames columns.
func (c *conn) maskColumnDef(op *operation, p []byte) []byte {
	if n, ok := op.filter.(columnNamer); ok {
		return n.ColumnDefinition(p)
	}
	return p
}

// shownColumnName is a column's name through the filter f, if it renames
// columns.
func shownColumnName(f ResultFilter, name string) string {
	if n, ok := f.(columnNamer); ok {
		return n.ColumnName(name)
	}
	return name
}

// renameColumn rewrites the five names of a ColumnDefinition41 payload
// (schema, table, org_table, name, org_name) for which keep is false to
// the given replacement, the catalog and the fixed fields as they were.
// It returns p itself when every name is kept, and nil when p does not
// parse.
func renameColumn(p []byte, keep func(string) bool, replacement string) []byte {
	cur := &cursor{b: p}
	catalog := cur.lenencBytes()
	var names [5][]byte
	all := true
	for i := range names {
		names[i] = cur.lenencBytes()
		all = all && keep(string(names[i]))
	}
	if cur.bad {
		return nil
	}
	if all {
		return p
	}
	out := appendLenenc(nil, uint64(len(catalog)))
	out = append(out, catalog...)
	for _, n := range names {
		if !keep(string(n)) {
			n = []byte(replacement)
		}
		out = appendLenenc(out, uint64(len(n)))
		out = append(out, n...)
	}
	return append(out, cur.b...)
}
