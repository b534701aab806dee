package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/webhook"
)

// core is what decides and records, shared by the API and every engine:
// the recording, the review service and the guard. It is protocol-free.
type core struct {
	rec      *recording.Log
	reviews  *review.Service
	guard    *guard.Gate
	masks    map[string]*mask.Rules // by resource
	notifier interface{ Close() error }
	hooks    *webhook.Notifier // review, grant and break-glass notifications
	metrics  *metrics.Metrics
	stop     context.CancelFunc // ends the background watchers
	// retaining is closed when the retention job (recording.retention)
	// has stopped; nil when retention is off.
	retaining chan struct{}
}

// engineGuard is the guard engines use: counted in the metrics.
func (c *core) engineGuard(g guard.Guard) guard.Guard { return countingGuard{g, c.metrics} }

// engineRecorder is the recorder engines use: sessions counted, and
// forgotten by the guard when they close.
func (c *core) engineRecorder() recording.Recorder {
	return sessionCounter{Recorder: c.rec, m: c.metrics, forget: c.guard.Forget}
}

// sweepEvery is how often the review sweeper looks for reviews and grants
// whose time ran out.
const sweepEvery = 10 * time.Second

// signingKeyPath is where the recording's Ed25519 key lives.
func signingKeyPath(cfg *config.Config) string {
	if cfg.Recording.SigningKeyFile != "" {
		return cfg.Recording.SigningKeyFile
	}
	return filepath.Join(cfg.DataDir, "recording.key")
}

func openCore(ctx context.Context, cfg *config.Config, st store.Store, m *metrics.Metrics, log *slog.Logger) (*core, error) {
	c := &core{masks: map[string]*mask.Rules{}, metrics: m}
	for _, r := range cfg.Resources {
		rules, err := mask.Compile(r.Policy.Masking)
		if err != nil {
			return nil, fmt.Errorf("resources %s: %w", r.Name, err)
		}
		c.masks[r.Name] = rules
	}
	key, err := recording.LoadOrCreateKey(signingKeyPath(cfg))
	if err != nil {
		return nil, err
	}
	sinks, err := openSinks(cfg)
	if err != nil {
		return nil, err
	}
	redact := eventRedactor(cfg)
	if c.rec, err = recording.Open(ctx, timedStore{st, m}, recording.Options{
		Key: key, CheckpointEvery: cfg.Recording.CheckpointEvery, CheckpointInterval: cfg.Recording.CheckpointInterval,
		Sinks: sinks, Redact: redact, Logger: log,
	}); err != nil {
		return nil, fmt.Errorf("open the recording: %w", err)
	}
	policies, err := guard.Policies(cfg)
	if err != nil {
		return c, err
	}
	var notifier review.Notifier
	if pg, ok := st.(*store.Postgres); ok {
		n := pg.ReviewNotifier(log) // approvals on one replica release waits on another
		notifier, c.notifier = n, n
	}
	// Webhooks carry no more than the trail: the recording's redactor runs
	// on every body before it leaves.
	c.hooks = webhook.New(cfg.Webhooks, webhook.Options{Redact: redact, Logger: log})
	if c.reviews, err = review.New(review.Options{
		Store: st, Policies: policies, Identity: cfg.Identity, Recorder: c.rec, Notifier: notifier, Logger: log,
		Events: c.hooks.Notify,
	}); err != nil {
		return c, err
	}
	digestKey, err := digestKey(cfg)
	if err != nil {
		return c, err
	}
	if c.guard, err = guard.New(guard.Options{Config: cfg, Reviews: c.reviews, Recorder: c.rec, DigestKey: digestKey, Logger: log}); err != nil {
		return c, err
	}
	bg, stop := context.WithCancel(context.Background())
	c.stop = stop
	go watchPending(bg, c.reviews, m, 15*time.Second)
	// The sweeper records review.expired and grant.ended (and sends their
	// webhooks); expiry itself is enforced at every read, and a grant's end
	// cuts live sessions through the guard's own watch.
	go c.reviews.Run(bg, sweepEvery)
	if keep := cfg.Recording.Retention; keep > 0 {
		c.retaining = make(chan struct{})
		go func() { defer close(c.retaining); retainLoop(bg, c.rec, st, keep, log) }()
	}
	return c, nil
}

// close ends waits, then closes the recording (a final signed checkpoint).
// Call it after the engines stopped.
func (c *core) close(ctx context.Context) error {
	var errs []error
	if c.stop != nil {
		c.stop()
	}
	if c.retaining != nil {
		<-c.retaining // a run appends to the recording, which closes below
	}
	if c.guard != nil {
		c.guard.Close()
	}
	if c.rec != nil {
		errs = append(errs, c.rec.Close(ctx))
	}
	if c.notifier != nil {
		errs = append(errs, c.notifier.Close())
	}
	if c.hooks != nil {
		errs = append(errs, c.hooks.Close())
	}
	return errors.Join(errs...)
}

func openSinks(cfg *config.Config) ([]recording.Sink, error) {
	var sinks []recording.Sink
	for i, s := range cfg.Recording.Sinks {
		switch s.Type {
		case "file":
			fs, err := recording.NewFileSink(s.Path, 0)
			if err != nil {
				return nil, fmt.Errorf("recording.sinks[%d]: %w", i, err)
			}
			sinks = append(sinks, fs)
		case "webhook":
			sinks = append(sinks, recording.NewWebhookSink(s.URL, nil, 0))
		}
	}
	return sinks, nil
}

// digestKey is the deployment secret that keys operation digests: from
// secrets.digest_key_env, else a random key made at first start and kept
// in a 0600 file in the data directory.
func digestKey(cfg *config.Config) ([]byte, error) {
	if len(cfg.Secrets.DigestKey) > 0 {
		return cfg.Secrets.DigestKey, nil
	}
	path := filepath.Join(cfg.DataDir, "digest.key")
	b, err := os.ReadFile(path)
	if err == nil {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s: the digest key is readable by others (mode %v); run chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		if len(b) < 32 {
			return nil, fmt.Errorf("%s: the digest key is shorter than 32 bytes; remove it to make a new one (pending approvals will need new reviews)", path)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	return b, f.Close()
}

// eventRedactor masks what the content detectors find in recorded events
// (statement texts hold values too), and the password literals of
// statements that set one (no detector knows a password). Rules of every
// resource apply, for every role: the recording is one trail for all. The
// webhooks use it too. An event does not say its dialect: both dialects'
// password rules apply.
func eventRedactor(cfg *config.Config) func([]byte) []byte {
	var all []config.MaskRule
	for _, r := range cfg.Resources {
		for _, m := range r.Policy.Masking {
			if len(m.Detectors) > 0 {
				m.Roles = nil
				all = append(all, m)
			}
		}
	}
	rules, err := mask.Compile(all)
	if err != nil || len(all) == 0 {
		rules = nil // config validation already refused bad rules
	}
	return func(data []byte) []byte {
		passwords := sqlkind.MayCarryPassword(data)
		// The detectors may read the encoded document only where it holds
		// no escape: "\n", "\t" or "\u003e" put a letter against a value,
		// and a detector with a word boundary would refuse it there.
		if !passwords && (rules == nil || (bytes.IndexByte(data, '\\') < 0 && bytes.Equal(rules.Text(nil, data), data))) {
			return data // the common case: nothing found, nothing re-encoded
		}
		return redactJSON(data, func(s string) string {
			if passwords {
				s = sqlkind.MaskPasswords("", s)
			}
			if rules != nil {
				s = string(rules.Text(nil, []byte(s)))
			}
			return s
		})
	}
}

// redactJSON applies f to every string inside a JSON document, so a
// replacement can never break the document's syntax. A document that does
// not decode is replaced whole (fail closed).
func redactJSON(data []byte, f func(string) string) []byte {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		out, _ := json.Marshal(map[string]string{"redacted": mask.Redacted})
		return out
	}
	// An operation's keyed digest is hex the gateway made: a run of its
	// digits can pass for a card number, and masking it would break the
	// digest that reviews and the trail are checked by.
	top, _ := v.(map[string]any)
	digest, keep := top["digest"].(string)
	keep = keep && isDigestHex(digest)
	if keep {
		delete(top, "digest")
	}
	v = walkStrings(v, f)
	if keep {
		top["digest"] = digest
	}
	out, err := json.Marshal(v)
	if err != nil {
		out, _ = json.Marshal(map[string]string{"redacted": mask.Redacted})
	}
	return out
}

// isDigestHex reports whether s has the form of guard's digest: 64
// lower-case hex digits.
func isDigestHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func walkStrings(v any, f func(string) string) any {
	switch x := v.(type) {
	case string:
		return f(x)
	case []any:
		for i := range x {
			x[i] = walkStrings(x[i], f)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = walkStrings(e, f)
		}
	}
	return v
}
