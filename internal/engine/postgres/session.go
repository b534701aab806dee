package postgres

// session adapts a conn to internal/engine/listen, which runs it.
type session struct{ *conn }

func (s session) Serve()             { s.run() }
func (s session) Kill(reason string) { s.kill(reason) }
func (s session) Fail(reason string) { s.closeWith(reason) }
func (s session) ID() string         { return s.sessionID() }
