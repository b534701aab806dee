package recording

// OperationData is the body of a TypeOperation event, the same for every
// engine so that the trail reads alike whatever the protocol. A struct
// rather than a map: one is built for every statement. Parameter values
// are not written (they may hold unmasked data); the digest binds them.
// The session-state fields are those of the engine's dialect, left out
// where it has none.
type OperationData struct {
	Text       string   `json:"text"`
	Kind       string   `json:"kind"`
	Objects    []string `json:"objects"`
	Statements int      `json:"statements"`
	Reason     string   `json:"reason"`
	Params     int      `json:"params"`
	// BulkRows is how many rows (parameter sets) a MySQL
	// COM_STMT_BULK_EXECUTE carried; Params counts their values.
	BulkRows int `json:"bulk_rows,omitempty"`
	// Command is the protocol command that carried it (MySQL: COM_QUERY,
	// COM_STMT_EXECUTE, ...).
	Command       string `json:"command,omitempty"`
	Decision      string `json:"decision"`
	Code          string `json:"code"`
	ReviewID      string `json:"review_id"`
	GrantID       string `json:"grant_id"`
	Digest        string `json:"digest"`
	SearchPath    string `json:"search_path,omitempty"` // PostgreSQL
	Role          string `json:"role,omitempty"`        // PostgreSQL
	Schema        string `json:"schema,omitempty"`      // MySQL: the current schema
	InTransaction bool   `json:"in_transaction"`
	// Variables names the MySQL user variables the operation read; their
	// values are in its digest only (they may hold masked data).
	Variables string `json:"variables,omitempty"`
	// Unmasked: an unmask grant lifted masking for this operation's
	// results (every unmasked result is recorded as such).
	Unmasked      bool   `json:"unmasked,omitempty"`
	UnmaskGrantID string `json:"unmask_grant_id,omitempty"`
}

// OutcomeData is the body of a TypeOperationOutcome event.
type OutcomeData struct {
	CommandTag string `json:"command_tag"`
	Rows       int64  `json:"rows"`
	ErrorCode  string `json:"error_code"`
	Committed  bool   `json:"committed"`
	RolledBack bool   `json:"rolled_back"`
	Digest     string `json:"digest"`
	DurationMS int64  `json:"duration_ms"`
	// Results are the first rows of each result, masked, when the
	// resource keeps results (record.results); a pointer so that a kept
	// but empty capture is written as [] and none at all is left out.
	Results *[]Result `json:"results,omitempty"`
}
