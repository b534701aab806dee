package postgres

import "github.com/jackc/pgx/v5/pgproto3"

// ResultFilter sees every result message of one operation before the
// client does; masking plugs in here. It may rewrite values in place (a
// changed DataRow is re-encoded whole, every length prefix rebuilt). An
// error ends the session: a result that cannot be filtered is not shown.
// Rows stream through one at a time; a filter must not keep them.
type ResultFilter interface {
	RowDescription(m *pgproto3.RowDescription) error
	DataRow(m *pgproto3.DataRow) error
	CopyData(m *pgproto3.CopyData) error
}

// described keeps the RowDescription the upstream sent for a Describe
// (nil for NoData) with the statement or portal it describes.
func (p pending) described(d *pgproto3.RowDescription) {
	switch {
	case p.st != nil:
		p.st.desc.Store(d)
	case p.portal != nil:
		p.portal.desc.Store(d)
	}
}

// filterRow passes a row through the operation's filter. In the extended
// protocol the rows of an Execute usually come without a RowDescription
// (it answered an earlier Describe of the statement or portal): the filter
// is shown the stored one first, so it knows what it filters.
func (op *operation) filterRow(m *pgproto3.DataRow) error {
	if op.filter == nil {
		return nil
	}
	if !op.described {
		op.described = true
		if op.portal != nil {
			if d := op.portal.rowDesc(); d != nil {
				if err := op.filter.RowDescription(d); err != nil {
					return err
				}
			}
		}
	}
	return op.filter.DataRow(m)
}

// copyRowDesc copies a RowDescription out of the decoder's buffer, which
// is reused by the next Receive.
func copyRowDesc(m *pgproto3.RowDescription) *pgproto3.RowDescription {
	out := &pgproto3.RowDescription{Fields: make([]pgproto3.FieldDescription, len(m.Fields))}
	for i, f := range m.Fields {
		f.Name = clone(f.Name)
		out.Fields[i] = f
	}
	return out
}
