package api

// reviewRoutes are the people-facing surfaces of reviews, grants, the
// recording and sessions (docs/api.md).
func (s *server) reviewRoutes() {
	m := s.mux
	m.HandleFunc("GET /v1/reviews", s.authed(s.listReviews))
	m.HandleFunc("GET /v1/reviews/{id}", s.authed(s.showReview))
	m.HandleFunc("POST /v1/reviews/{id}/approve", s.authed(s.approveReview))
	m.HandleFunc("POST /v1/reviews/{id}/reject", s.authed(s.rejectReview))
	m.HandleFunc("POST /v1/grants", s.authed(s.requestGrant))
	m.HandleFunc("GET /v1/grants", s.authed(s.listGrants))
	m.HandleFunc("POST /v1/grants/{id}/revoke", s.authed(s.revokeGrant))
	m.HandleFunc("GET /v1/audit/verify", s.authed(s.auditVerify))
	m.HandleFunc("GET /v1/audit/export", s.authed(s.auditExport))
	m.HandleFunc("GET /v1/audit/pubkey", s.authed(s.auditPubkey))
	m.HandleFunc("GET /v1/audit/changes", s.authed(s.auditChanges))
	m.HandleFunc("GET /v1/audit/unreviewed", s.authed(s.auditUnreviewed))
	m.HandleFunc("GET /v1/sessions", s.authed(s.listSessions))
	m.HandleFunc("GET /v1/sessions/{id}", s.authed(s.showSession))
}
