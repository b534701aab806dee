package recording

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// FileSink appends every event and checkpoint to a file as JSON lines
// (Line), synced after each batch. Kept outside the store (another disk,
// another host), it is the witness VerifyWitness compares the store with;
// an export reader (VerifyExport) also reads it.
type FileSink struct {
	f *os.File
	q *queue
}

// NewFileSink opens (or creates, mode 0600) path for appending. queueSize
// is the number of lines held while the disk is slow (0: 65536).
func NewFileSink(path string, queueSize int) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recording: file sink: %w", err)
	}
	s := &FileSink{f: f}
	s.q = newQueue("file:"+path, queueSize, s.write)
	return s, nil
}

func (s *FileSink) write(_ context.Context, lines [][]byte) error {
	if _, err := s.f.Write(bytes.Join(lines, nil)); err != nil {
		return err
	}
	return s.f.Sync()
}

// Event queues the event's line.
func (s *FileSink) Event(e Stored) { s.q.push(marshalLine(EventLine(e))) }

// Checkpoint queues the checkpoint's line.
func (s *FileSink) Checkpoint(c Checkpoint) { s.q.push(marshalLine(CheckpointLine(c))) }

// Dropped counts lines lost to a full queue or to Close giving up.
func (s *FileSink) Dropped() uint64 { return s.q.dropped.Load() }

// Close writes what is queued (until ctx ends) and closes the file.
func (s *FileSink) Close(ctx context.Context) error {
	err := s.q.close(ctx)
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WebhookSink POSTs batches of JSON lines (application/x-ndjson) to a URL,
// retrying with backoff until it answers 2xx.
type WebhookSink struct {
	url    string
	client *http.Client
	q      *queue
}

// NewWebhookSink posts to url with client (nil: a client with a 10s
// timeout). queueSize as for NewFileSink.
func NewWebhookSink(url string, client *http.Client, queueSize int) *WebhookSink {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	s := &WebhookSink{url: url, client: client}
	s.q = newQueue("webhook:"+url, queueSize, s.post)
	return s
}

func (s *WebhookSink) post(ctx context.Context, lines [][]byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(bytes.Join(lines, nil)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // drained for connection reuse only
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Event queues the event's line.
func (s *WebhookSink) Event(e Stored) { s.q.push(marshalLine(EventLine(e))) }

// Checkpoint queues the checkpoint's line.
func (s *WebhookSink) Checkpoint(c Checkpoint) { s.q.push(marshalLine(CheckpointLine(c))) }

// Dropped counts lines lost to a full queue or to Close giving up.
func (s *WebhookSink) Dropped() uint64 { return s.q.dropped.Load() }

// Close delivers what is queued until ctx ends.
func (s *WebhookSink) Close(ctx context.Context) error { return s.q.close(ctx) }
