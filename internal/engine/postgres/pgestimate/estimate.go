package pgestimate

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/review"
	"github.com/jackc/pgx/v5/pgconn"
)

// Marker starts every EXPLAIN the estimator sends, so that whoever reads
// the upstream's statement log (a DBA, the end-to-end tests that prove a
// held write never ran) can tell the gateway's estimate, which executes
// nothing, from the statement itself.
const Marker = "/* countersign estimate: EXPLAIN only, nothing runs */ "

// timeout bounds one estimate, connection included: an approver waits for
// it, and the planner of a legitimate statement needs far less.
const timeout = 5 * time.Second

// maxText bounds the statements explained; a longer one gets no estimate
// (parsing and planning it is work an approver's click should not cause).
const maxText = 64 << 10

// readFuncs are the functions a statement may call and still be explained:
// built-ins of pg_catalog that are immutable or stable and change nothing.
// A name also defined outside pg_catalog (an overload or a shadow) gets no
// estimate, whatever the search_path.
var readFuncs = []string{
	"abs", "age", "btrim", "ceil", "ceiling", "char_length", "concat", "concat_ws",
	"current_date", "date_part", "date_trunc", "floor", "greatest", "initcap", "least",
	"left", "length", "lower", "lpad", "ltrim", "make_date", "make_interval", "md5",
	"mod", "now", "octet_length", "position", "power", "replace", "right", "round",
	"rpad", "rtrim", "split_part", "sqrt", "starts_with", "strpos", "substr", "substring",
	"to_char", "to_date", "to_timestamp", "trim", "trunc", "upper",
}

// Estimator is review.Estimator for the PostgreSQL resources of a config.
type Estimator struct {
	resources map[string]*config.Resource
	log       *slog.Logger

	mu    sync.Mutex
	cache map[[32]byte]cached // by review id, resource and text
}

// cached is one estimate worked out.
type cached struct {
	rows int64
	ok   bool
	why  string
}

// maxCached bounds the estimates kept; pending reviews are few.
const maxCached = 4096

var _ review.Estimator = (*Estimator)(nil)

// New returns the estimator of the config's PostgreSQL resources.
func New(cfg *config.Config, log *slog.Logger) *Estimator {
	if log == nil {
		log = slog.Default()
	}
	e := &Estimator{resources: map[string]*config.Resource{}, log: log, cache: map[[32]byte]cached{}}
	for i := range cfg.Resources {
		if r := &cfg.Resources[i]; r.Type == "postgres" {
			e.resources[r.Name] = r
		}
	}
	return e
}

// noEstimate is a reason there is none, said to the approver.
type noEstimate string

// EstimateRows implements review.Estimator. A review's statement does not
// change, so its estimate is worked out once and kept: an initiator calling
// `reviews show` again and again does not plan it (and lock its table) again.
func (e *Estimator) EstimateRows(ctx context.Context, r review.Review) (int64, bool, string) {
	key := cacheKey(r)
	e.mu.Lock()
	c, ok := e.cache[key]
	e.mu.Unlock()
	if ok {
		return c.rows, c.ok, c.why
	}
	rows, ok, why, keep := e.estimate(ctx, r)
	if keep && r.ID != "" {
		e.mu.Lock()
		if len(e.cache) >= maxCached {
			clear(e.cache) // the reviews shown again soon are worked out again once
		}
		e.cache[key] = cached{rows, ok, why}
		e.mu.Unlock()
	}
	return rows, ok, why
}

// cacheKey is a digest of what the estimate depends on in a review.
func cacheKey(r review.Review) [32]byte {
	h := sha256.New()
	for _, s := range []string{r.ID, r.Resource, r.Dialect, r.Text, r.State.Role, r.State.SearchPath} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	for _, p := range r.Params {
		fmt.Fprintf(h, "%d/%d/%v/%d:%s", p.Type, p.Format, p.Null, len(p.Value), p.Value)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// estimate is EstimateRows uncached; keep is false when the answer may be
// different on another try (the upstream did not answer, a lock or a plan
// failed).
func (e *Estimator) estimate(ctx context.Context, r review.Review) (rows int64, ok bool, why string, keep bool) {
	res, found := e.resources[r.Resource]
	switch {
	case !found || r.Dialect != "postgres":
		return 0, false, "not a PostgreSQL resource", true
	case r.Type == review.TypeGrant:
		return 0, false, "a grant has no statement", true
	}
	st, ne := inspect(r.Text)
	if ne != "" {
		return 0, false, string(ne), true
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rows, err := e.explain(ctx, res, r, st)
	switch {
	case errors.As(err, &ne):
		return 0, false, string(ne), !transient(ne)
	case err != nil:
		// The upstream's error text is not logged: it may carry data (a
		// setting's value, a row) the statement was built to reveal.
		e.log.Warn("row estimate failed", "review", r.ID, "resource", r.Resource, "cause", cause(err))
		return 0, false, "the upstream did not answer the estimate", false
	}
	return rows, true, "", true
}

// cause describes an error without the upstream's message: its SQLSTATE
// if the upstream sent it, else the error (the network's, pgconn's own).
func cause(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return "SQLSTATE " + pe.Code
	}
	return err.Error()
}

func (n noEstimate) Error() string { return string(n) }

func params(ps []review.Param) (oids []uint32, formats []int16, values [][]byte) {
	for _, p := range ps {
		oids, formats = append(oids, p.Type), append(formats, p.Format)
		if p.Null {
			values = append(values, nil)
		} else {
			values = append(values, p.Value)
		}
	}
	return
}

// planRows reads the rows the statement would change from EXPLAIN's JSON:
// the ModifyTable node's input (its own row count is 0 since PostgreSQL 13).
func planRows(js []byte) (int64, error) {
	type node struct {
		Type  string  `json:"Node Type"`
		Rows  float64 `json:"Plan Rows"`
		Plans []node  `json:"Plans"`
	}
	var out []struct {
		Plan node `json:"Plan"`
	}
	if err := json.Unmarshal(js, &out); err != nil || len(out) != 1 {
		return 0, fmt.Errorf("EXPLAIN's JSON: %v", err)
	}
	n := out[0].Plan
	if n.Type == "ModifyTable" && n.Rows == 0 && len(n.Plans) > 0 {
		n = n.Plans[0]
	}
	return int64(n.Rows), nil
}
