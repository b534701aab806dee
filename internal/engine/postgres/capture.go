package postgres

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
)

// Result capture (a resource's `record: {results: N}`): the first N rows
// of each result of an operation are kept with its "operation.outcome"
// event. The rows are copies taken before the client's filter runs, masked
// for the recording by Options.Capture's filter (every masking rule,
// whatever the roles and any unmask grant of the session: the trail is one
// for all readers). Nothing of this runs when the
// resource captures nothing: op.capture stays nil, and the relay's only
// cost is that nil check.

// capture collects the rows of one operation's results.
type capture struct {
	max     int
	filter  ResultFilter // masks the copies; nil: the resource masks nothing
	desc    *pgproto3.RowDescription
	results []recording.Result
	row     pgproto3.DataRow // the copy being masked, reused
}

// newCapture returns the capture of an allowed operation's results, or nil
// when the resource keeps none. Without Options.Capture nothing is kept:
// rows that might be unmasked are never recorded.
func (c *conn) newCapture(op *operation, v guard.Verdict) *capture {
	n := c.res.Record.Results
	if n <= 0 || v.Decision != guard.Allow || c.e.o.Capture == nil {
		return nil
	}
	return &capture{max: n, filter: c.e.o.Capture(c.sess, &op.g, v)}
}

// describe starts a new result. d is copied: the relay's message is
// reused.
func (k *capture) describe(d *pgproto3.RowDescription) error {
	k.desc = copyRowDesc(d)
	cols := make([]string, len(d.Fields))
	for i, f := range d.Fields {
		cols[i] = string(f.Name)
	}
	k.results = append(k.results, recording.Result{Columns: cols, Rows: [][]*string{}})
	if k.filter != nil {
		return k.filter.RowDescription(k.desc)
	}
	return nil
}

// add keeps a masked copy of m while the result has room. portal gives
// the description of rows that come without one (an Execute).
func (k *capture) add(m *pgproto3.DataRow, portal *portal) error {
	if len(k.results) == 0 {
		var d *pgproto3.RowDescription
		if portal != nil {
			d = portal.rowDesc()
		}
		if d == nil {
			d = &pgproto3.RowDescription{}
		}
		if err := k.describe(d); err != nil {
			return err
		}
	}
	r := &k.results[len(k.results)-1]
	if len(r.Rows) >= k.max {
		r.Truncated = true
		return nil
	}
	k.row.Values = k.row.Values[:0]
	for _, v := range m.Values {
		if v != nil {
			v = append([]byte{}, v...)
		}
		k.row.Values = append(k.row.Values, v)
	}
	if k.filter != nil {
		if err := k.filter.DataRow(&k.row); err != nil {
			return err
		}
	}
	row := make([]*string, len(k.row.Values))
	for i, v := range k.row.Values {
		if v == nil {
			continue
		}
		s := recording.ResultValue(v, k.binary(i))
		row[i] = &s
	}
	r.Rows = append(r.Rows, row)
	return nil
}

func (k *capture) binary(i int) bool {
	return k.desc != nil && i < len(k.desc.Fields) && k.desc.Fields[i].Format == 1
}

// captured is what the outcome event keeps (nil without capture).
func (op *operation) captured() []recording.Result {
	if op.capture == nil {
		return nil
	}
	if op.capture.results == nil {
		return []recording.Result{}
	}
	return op.capture.results
}
