package sqlkind

import "fmt"

// ClassifySession classifies text as Classify does, with each SQL-level
// EXECUTE resolved to the statement the session prepared under that name:
// prepared maps lower-case names to the texts that PREPARE ... FROM
// 'literal' prepared (the engine tracks it per connection); PREPAREs and
// DEALLOCATEs earlier in the same text count too. It also returns the
// texts the EXECUTEs run, in order, for the operation's digest: approving
// "EXECUTE s" approves what s is now, not whatever s becomes.
//
// It fails closed: an EXECUTE of a name not prepared from a literal stays
// Unknown, and so does an EXECUTE ... USING @vars of anything but a read
// (the variables' values are not known here), an EXECUTE of a prepared
// USE (the engine could not follow the switch), and every EXECUTE in a
// text with executable comments.
func (m *MySQLClassifier) ClassifySession(text string, prepared map[string]string) (Classification, []string) {
	return m.classifySession(m.analyze(text), text, prepared)
}

// ClassifySessionStatements is ClassifySession that also returns the
// text's statements, as Statements does, from one cache lookup. The
// statements are shared: callers must not change them.
func (m *MySQLClassifier) ClassifySessionStatements(text string, prepared map[string]string) (Classification, []string, []MySQLStatement) {
	a := m.analyze(text)
	c, texts := m.classifySession(a, text, prepared)
	return c, texts, a.stmts
}

func (m *MySQLClassifier) classifySession(a *myAnalysis, text string, prepared map[string]string) (Classification, []string) {
	if !hasExecute(a.stmts) {
		return a.c, nil
	}
	if variants, _ := mysqlVariants(text); len(variants) != 1 {
		return a.c, nil
	}
	local := make(map[string]string, len(prepared))
	for k, v := range prepared {
		local[k] = v
	}
	var texts []string
	parts := make([]Classification, len(a.stmts))
	for i, st := range a.stmts {
		parts[i] = st.Classification
		switch {
		case st.Prepare != nil && st.Prepare.FromVariable:
			delete(local, st.Prepare.Name)
		case st.Prepare != nil:
			local[st.Prepare.Name] = st.Prepare.Text
		case st.Deallocate != "":
			delete(local, st.Deallocate)
		case st.Execute != "":
			inner, ok := local[st.Execute]
			if !ok {
				continue
			}
			texts = append(texts, inner)
			parts[i] = m.executed(st, inner)
		}
	}
	return combine(parts), texts
}

// executed is the classification of an EXECUTE of the prepared text.
func (m *MySQLClassifier) executed(st MySQLStatement, text string) Classification {
	c := m.Classify(text)
	if trackedState(m.Statements(text)) != "" {
		// MariaDB prepares USE too; the engine follows only the state a
		// text writes itself, so an EXECUTE that switches schemas would
		// leave it deciding in the old one.
		return Classification{Kind: Unknown, Statements: 1, Objects: c.Objects, Reason: fmt.Sprintf(
			"EXECUTE %s runs a USE the gateway cannot follow through EXECUTE; send it as a statement of its own", st.Execute)}
	}
	if st.ExecuteUsing && c.Kind != Read {
		return Classification{Kind: Unknown, Statements: 1, Objects: c.Objects, Reason: fmt.Sprintf(
			"EXECUTE %s USING @variables: the values it binds are not known to the gateway; use the protocol's prepared statements or literal values", st.Execute)}
	}
	c.Statements = 1
	return c
}

func hasExecute(stmts []MySQLStatement) bool {
	for _, s := range stmts {
		if s.Execute != "" {
			return true
		}
	}
	return false
}
