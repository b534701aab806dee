package api

import (
	"net/http"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
)

// ExportErrorTrailer is the HTTP trailer GET /v1/audit/export sets when
// the export broke off after the answer began: the body is then
// incomplete, and a client must not take it for the whole trail.
const ExportErrorTrailer = "X-Countersign-Export-Error"

// VerifyReport is the answer of GET /v1/audit/verify: recording.Report in
// JSON, with its verdict and lines.
type VerifyReport struct {
	OK       bool          `json:"ok"`
	Strict   bool          `json:"strict"`
	KeyID    string        `json:"key_id"`
	Chains   []ChainReport `json:"chains"`
	Problems []string      `json:"problems"`
	Warnings []string      `json:"warnings"`
	Witness  []string      `json:"witness,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
}

// ChainReport is recording.ChainReport in JSON.
type ChainReport struct {
	Writer      string `json:"writer"`
	FirstSeq    int64  `json:"first_seq"`
	LastSeq     int64  `json:"last_seq"`
	Events      int64  `json:"events"`
	Checkpoints int    `json:"checkpoints"`
	SignedSeq   int64  `json:"signed_seq"`
	Unsigned    int64  `json:"unsigned"`
	Closed      bool   `json:"closed"`
	Retained    int64  `json:"retained,omitempty"` // events 1..retained deleted by retention
	Problem     string `json:"problem,omitempty"`
	BrokenSeq   int64  `json:"broken_seq,omitempty"`
}

// NewVerifyReport converts a recording.Report.
func NewVerifyReport(rep recording.Report, keyID string) VerifyReport {
	out := VerifyReport{OK: rep.OK(), Strict: rep.Strict, KeyID: keyID, Chains: []ChainReport{},
		Problems: nonNil(rep.Problems()), Warnings: nonNil(rep.Warnings()), Witness: rep.Witness, Notes: rep.Notes}
	for _, c := range rep.Chains {
		out.Chains = append(out.Chains, ChainReport(c))
	}
	return out
}

// Report converts back, so a client prints it as `audit verify` does.
func (v VerifyReport) Report() recording.Report {
	rep := recording.Report{Strict: v.Strict, Witness: v.Witness, Notes: v.Notes}
	for _, c := range v.Chains {
		rep.Chains = append(rep.Chains, recording.ChainReport(c))
	}
	return rep
}

// PublicKey is the answer of GET /v1/audit/pubkey.
type PublicKey struct {
	PublicKey string `json:"public_key"` // recording.PublicKeyString
	KeyID     string `json:"key_id"`
}

func (s *server) needRecorder() error {
	if s.Recorder == nil {
		return errorf(http.StatusNotFound, CodeNotConfigured, "this gateway serves no recording (it was started without one)")
	}
	return nil
}

// auditVerify recomputes every chain in the store and checks every
// checkpoint with the gateway's key. ?strict=1 fails unsigned tails and
// unclosed chains. A broken trail is a 200 whose ok is false.
func (s *server) auditVerify(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	if err := needAuditor(caller.Identity, "verifying the trail"); err != nil {
		return err
	}
	if err := s.needRecorder(); err != nil {
		return err
	}
	pub := s.Recorder.PublicKey()
	rep, err := recording.Verify(r.Context(), s.Store, pub, recording.VerifyOptions{Strict: flag(r.URL.Query(), "strict")})
	if err != nil {
		s.log.ErrorContext(r.Context(), "api: audit verify could not read the store", "err", err)
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "the trail could not be read from the store, so it was not verified; try again")
	}
	writeJSON(w, http.StatusOK, NewVerifyReport(rep, recording.KeyID(pub)))
	return nil
}

// auditExport streams the trail (events with hashes, checkpoints) as JSON
// lines; `countersign audit verify --file` checks it offline.
func (s *server) auditExport(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	if err := needAuditor(caller.Identity, "exporting the trail"); err != nil {
		return err
	}
	since, err := s.queryTime(r, "since")
	if err != nil {
		return err
	}
	until, err := s.queryTime(r, "until")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Trailer", ExportErrorTrailer)
	w.WriteHeader(http.StatusOK)
	if err := recording.Export(r.Context(), s.Store, w, since, until); err != nil {
		s.log.ErrorContext(r.Context(), "api: audit export broke off", "err", err)
		w.Header().Set(ExportErrorTrailer, "the export broke off before the end of the trail; export again")
	}
	s.log.InfoContext(r.Context(), "trail exported", "by", caller.Identity.Key(), "since", since, "until", until)
	return nil
}

// auditPubkey tells any API caller the key that verifies the checkpoints.
func (s *server) auditPubkey(w http.ResponseWriter, r *http.Request, _ identity.Token) error {
	if err := s.needRecorder(); err != nil {
		return err
	}
	pub := s.Recorder.PublicKey()
	writeJSON(w, http.StatusOK, PublicKey{PublicKey: recording.PublicKeyString(pub), KeyID: recording.KeyID(pub)})
	return nil
}
