package lineage

import "github.com/countersign/countersign/internal/mask"

// Result is what one statement's text says about where its data comes from.
// The zero Result describes a statement with no result rows and no filter
// uses; Analyze never returns it for a statement it does not understand
// (those get FilterUnresolved).
type Result struct {
	// Columns are the output columns of the statement's final result, in
	// order, with Name, Resolved and Sources set (Text is the engine's, from
	// the column type). Empty for statements that send no rows to the
	// client. Use ColumnsFor to match them to a RowDescription.
	Columns []mask.Column
	// Filters are the source columns used other than as part of an output
	// column: conditions, joins, grouping, ordering, windows, LIMIT, CASE
	// conditions and the data of writes. Sorted, unique.
	Filters []mask.Source
	// FilterUnresolved is true when some use other than output could not be
	// traced (an unknown function or relation in a condition, a statement
	// kind the analyzer does not understand): with filter:deny rules on the
	// resource the engine must refuse the statement.
	FilterUnresolved bool
	// Copy is set for COPY ... TO STDOUT: the format of the CopyData rows,
	// whose columns are Columns.
	Copy *CopyFormat
	// Defines names the prepared statement (PREPARE) or cursor (DECLARE)
	// whose query Columns describe; the engine keeps the Result under that
	// name for EXECUTE and FETCH.
	Defines string
	// Refers names the prepared statement (EXECUTE) or cursor (FETCH, MOVE)
	// whose rows this statement returns; its columns are those of the
	// Result the engine kept for that name, and none if it kept none.
	Refers string

	// unknownWidth counts expansions (SELECT * over a function whose result
	// type is not known) that stand for an unknown number of columns.
	unknownWidth int
}

// ColumnsFor returns the columns of a result with n fields (the
// RowDescription's, or the CopyOutResponse's column count). When the
// analysis does not line up with what the server sends (another count, or
// an expansion of unknown width that could shift the columns), every
// column is unresolved: mask all rather than mask the wrong one.
func (r *Result) ColumnsFor(n int) []mask.Column {
	if r != nil && len(r.Columns) == n && r.unknownWidth == 0 {
		return r.Columns
	}
	if r != nil && len(r.Columns) == n && r.unknownWidth == 1 {
		// One expansion standing for exactly one column: the positions
		// agree, only that column is unknown (and already unresolved).
		return r.Columns
	}
	out := make([]mask.Column, n)
	for i := range out {
		out[i].Name = "?column?"
		if r != nil && len(r.Columns) == n {
			out[i].Name = r.Columns[i].Name
		}
	}
	return out
}
