package mysql

import (
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
)

// Result capture (a resource's `record: {results: N}`): the first N rows
// of each result set of an operation are kept with its "operation.outcome"
// event. The rows are copies taken before the client's filter runs, masked
// for the recording by Options.Capture's filter (every masking rule,
// whatever the roles and any unmask grant of the session: the trail is one
// for all readers). Nothing of this runs when the resource captures
// nothing: op.capture stays nil, and the relay's only cost is that nil
// check.

// capture collects the rows of one operation's result sets.
type capture struct {
	max     int
	filter  ResultFilter // masks the copies; nil: the resource masks nothing
	cols    []Column
	results []recording.Result
	buf     []byte // the copy being masked, reused
}

// newCapture returns the capture of an allowed operation's results, or nil
// when the resource keeps none. Without Options.Capture nothing is kept:
// rows that might be unmasked are never recorded.
func (c *conn) newCapture(op *operation, v guard.Verdict) *capture {
	n := c.res.Record.Results
	if n <= 0 || v.Decision != guard.Allow || c.e.o.Capture == nil {
		return nil
	}
	k := &capture{max: n, filter: c.e.o.Capture(c.sess, &op.g, v)}
	if va, ok := k.filter.(viewAware); ok {
		va.setViews(c.e.isView(c.res))
	}
	if la, ok := k.filter.(lineageAware); ok {
		la.setLineages(&c.lineages)
	}
	return k
}

// columns starts a new result set.
func (k *capture) columns(cols []Column) error {
	k.cols = cols
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = shownColumnName(k.filter, c.Name)
	}
	k.results = append(k.results, recording.Result{Columns: names, Rows: [][]*string{}})
	if k.filter != nil {
		return k.filter.Columns(cols)
	}
	return nil
}

// add keeps a masked copy of the row payload p while the result has room.
func (k *capture) add(p []byte, binary bool) error {
	if len(k.results) == 0 {
		return nil // rows before column definitions: the relay refuses them
	}
	r := &k.results[len(k.results)-1]
	if len(r.Rows) >= k.max {
		r.Truncated = true
		return nil
	}
	k.buf = append(k.buf[:0], p...)
	row, err := k.row(k.buf, binary)
	if err != nil {
		return err
	}
	r.Rows = append(r.Rows, row)
	return nil
}

func (k *capture) row(p []byte, binary bool) ([]*string, error) {
	active := k.filter != nil && k.filter.Active()
	out := make([]*string, len(k.cols))
	if binary {
		if active {
			var err error
			if p, err = k.filter.BinaryRow(p); err != nil {
				return nil, err
			}
		}
		vals, err := parseBinaryRow(p, k.cols)
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			if !v.null {
				s := recording.ResultValue(binaryText(k.cols[i], v.value), false)
				out[i] = &s
			}
		}
		return out, nil
	}
	vals, ok := parseTextRow(p, len(k.cols))
	if !ok {
		return nil, errBinaryRow
	}
	if active {
		if err := k.filter.TextRow(vals); err != nil {
			return nil, err
		}
	}
	for i, v := range vals {
		if v != nil {
			s := recording.ResultValue(v, false)
			out[i] = &s
		}
	}
	return out, nil
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
