// Package sqlkind classifies SQL statement text into the operation kinds of
// DESIGN.md (read, write, schema, privilege, admin, unknown) with the real
// parser of each dialect, and lists the objects each statement touches.
//
// It fails closed: text that cannot be parsed, or whose effect depends on
// something not resolved, is Unknown, the most dangerous kind. The zero Kind
// is Unknown.
package sqlkind
