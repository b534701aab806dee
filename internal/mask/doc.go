// Package mask masks sensitive values before they reach a client or the
// recording (DESIGN.md invariant 5). It is protocol-free: engines resolve
// where each result column comes from and ask a Plan what to do with it.
//
// Two kinds of rule, applied in this order:
//
//  1. Column rules (config `columns` or `column_regex`): the first rule, in
//     file order, that matches a column's source decides its strategy.
//  2. Detectors (config `detectors`): every text value that no column rule
//     masked is scanned, and each match is replaced. Numbers are scanned
//     too (a card number in a bigint); values of fixed-shape types
//     (Column.Fixed: dates, times, booleans, UUIDs, small integers) are not. One pass over
//     a value reads the signals every detector's regular expression needs
//     (Detector.need); most values have none, and no expression runs.
//
// It fails closed: a column whose source cannot be resolved is masked whole
// (Plan.Unresolved), and a strategy whose output would not be valid for the
// column's type yields NULL rather than a value a driver cannot decode.
package mask
