package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/review"
)

// Options tunes delivery. The zero value is the default.
type Options struct {
	// QueueSize bounds the notifications waiting per webhook (default
	// 1000); beyond it Notify drops.
	QueueSize int
	// MaxAttempts bounds the tries of one notification (default 5).
	MaxAttempts int
	// Backoff is the wait before the first retry (default 1s); it doubles
	// each retry up to MaxBackoff (default 1m).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// Client sends the requests (default: a client with Timeout, which
	// does not follow redirects, so a signed body never goes elsewhere).
	Client *http.Client
	// Redact, when set, is applied to every body before it is sent (the
	// recording's redactor, so a webhook carries no more than the trail).
	Redact func([]byte) []byte
	Logger *slog.Logger
}

// Notifier queues and delivers notifications to the configured webhooks.
// Notify is safe for concurrent use; Close stops delivery.
type Notifier struct {
	targets []*target
	dropped atomic.Uint64
	log     *slog.Logger
	redact  func([]byte) []byte
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type target struct {
	url, host, format string
	secret            []byte
	queue             chan delivery
	// urgent carries break-glass and grant notifications: a flood of
	// ordinary reviews fills queue, never this one, and the worker takes
	// from it first.
	urgent chan delivery
}

type delivery struct {
	id, event string
	body      []byte
}

// New starts one delivery worker per webhook. hooks are validated config
// (config.Load checked URL and format); a hook without a secret is sent
// unsigned.
func New(hooks []config.Webhook, o Options) *Notifier {
	o = defaults(o)
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{log: o.Logger, redact: o.Redact, cancel: cancel}
	for _, h := range hooks {
		format := h.Format
		if format == "" {
			format = "json"
		}
		t := &target{url: h.URL, host: hostOf(h.URL), format: format, secret: h.Secret,
			queue: make(chan delivery, o.QueueSize), urgent: make(chan delivery, o.QueueSize)}
		n.targets = append(n.targets, t)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.work(ctx, t, o)
		}()
	}
	return n
}

func defaults(o Options) Options {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.Backoff, time.Second)
	set(&o.MaxBackoff, time.Minute)
	set(&o.Timeout, 10*time.Second)
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// hostOf is what logs name a webhook by: its host, never its path, which
// often holds a token (Slack's incoming webhook URLs do).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Host
}

// Notify queues the event for every webhook and returns at once; its
// signature is review.Options.Events'. A full queue drops the notification
// for that webhook, counted by Dropped.
func (n *Notifier) Notify(_ context.Context, e review.Event) {
	if len(n.targets) == 0 {
		return
	}
	id := newDelivery()
	p := payloadOf(id, e, n.redactText)
	for _, t := range n.targets {
		body, err := encode(t.format, p)
		if err != nil {
			n.log.Error("webhook notification not encoded; dropped", "webhook", t.host, "event", p.Event, "err", err)
			n.dropped.Add(1)
			continue
		}
		if n.redact != nil {
			body = n.redact(body)
		}
		q := t.queue
		if urgent(e.Kind) {
			q = t.urgent
		}
		select {
		case q <- delivery{id: id, event: p.Event, body: body}:
		default:
			total := n.dropped.Add(1)
			n.log.Warn("webhook queue full; notification dropped", "webhook", t.host, "event", p.Event,
				"review", e.Review.ID, "dropped_total", total)
		}
	}
}

// redactText runs the redactor on one text, whole. The redactor reads JSON
// documents, so the text goes in as a JSON string; anything but a string
// back withholds the text (fail closed).
func (n *Notifier) redactText(s string) string {
	if n.redact == nil || s == "" {
		return s
	}
	doc, err := json.Marshal(s)
	if err != nil {
		return withheldText
	}
	var out string
	if err := json.Unmarshal(n.redact(doc), &out); err != nil {
		return withheldText
	}
	return out
}

// withheldText stands for a text the redactor could not handle.
const withheldText = "(withheld: the redactor could not process this text)"

// Dropped counts notifications dropped since New: queue full, not
// encodable, or every attempt failed.
func (n *Notifier) Dropped() uint64 { return n.dropped.Load() }

// Close stops the workers; queued and retrying notifications are dropped
// (uncounted). It returns when the workers have stopped.
func (n *Notifier) Close() error {
	n.cancel()
	n.wg.Wait()
	return nil
}

func newDelivery() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "d-" + hex.EncodeToString(b[:])
}

func (n *Notifier) work(ctx context.Context, t *target, o Options) {
	for {
		select {
		case d := <-t.urgent:
			n.deliver(ctx, t, d, o)
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return
		case d := <-t.urgent:
			n.deliver(ctx, t, d, o)
		case d := <-t.queue:
			n.deliver(ctx, t, d, o)
		}
	}
}

// urgent says which notifications jump the queue: someone ran a held
// operation without review, or a window of wider access opened or closed.
func urgent(k review.EventKind) bool {
	switch k {
	case review.EventBreakglass, review.EventGrantStarted, review.EventGrantEnded:
		return true
	}
	return false
}

// deliver tries d up to MaxAttempts times, waiting Backoff, 2×Backoff, ...
// (at most MaxBackoff) between tries. A 4xx answer other than 429 is the
// receiver refusing this body: no retry.
func (n *Notifier) deliver(ctx context.Context, t *target, d delivery, o Options) {
	wait := o.Backoff
	for attempt := 1; ; attempt++ {
		retry, err := send(ctx, o.Client, t, d)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retry || attempt >= o.MaxAttempts {
			total := n.dropped.Add(1)
			n.log.Warn("webhook notification not delivered; dropped", "webhook", t.host, "event", d.event,
				"delivery", d.id, "attempts", attempt, "err", err, "dropped_total", total)
			return
		}
		n.log.Debug("webhook delivery failed; retrying", "webhook", t.host, "delivery", d.id, "attempt", attempt, "in", wait, "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		wait = min(2*wait, o.MaxBackoff)
	}
}

// errStatus is a non-2xx answer.
var errStatus = errors.New("webhook answered")

// send makes one attempt; retry says whether another may succeed. The
// timestamp and signature are made per attempt, so a retry is as fresh as
// the first try.
func send(ctx context.Context, c *http.Client, t *target, d delivery) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(d.body))
	if err != nil {
		return false, fmt.Errorf("build request: %w", err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "countersign-webhook")
	req.Header.Set(DeliveryHeader, d.id)
	req.Header.Set(EventHeader, d.event)
	req.Header.Set(TimestampHeader, ts)
	if len(t.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(t.secret, ts, d.body))
	}
	resp, err := c.Do(req)
	if err != nil {
		return true, redactURL(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("%w %d", errStatus, resp.StatusCode)
	default:
		return false, fmt.Errorf("%w %d (not retried: the receiver refuses this request)", errStatus, resp.StatusCode)
	}
}

// redactURL keeps the webhook's URL (which may hold a token) out of the
// error that gets logged.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
