package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	SignatureHeader = "X-Countersign-Signature"
	TimestampHeader = "X-Countersign-Timestamp"
	DeliveryHeader  = "X-Countersign-Delivery"
	EventHeader     = "X-Countersign-Event"
)

// Sign returns the signature header's value for body sent at timestamp (the
// TimestampHeader value): "sha256=" and the hex HMAC-SHA256, keyed by
// secret, of timestamp + "." + body.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify is the receiver's check: the signature matches (in constant time)
// and the timestamp is within tolerance of now, so neither a forged nor a
// replayed delivery passes.
func Verify(secret []byte, signature, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("webhook: no secret to verify with")
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: %s %q is not unix seconds", TimestampHeader, timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook: the delivery's timestamp is %s away from now, more than %s: refused as a possible replay", d.Round(time.Second), tolerance)
	}
	if !strings.HasPrefix(signature, "sha256=") {
		return fmt.Errorf("webhook: %s must start with sha256=", SignatureHeader)
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return errors.New("webhook: the signature does not match the body and timestamp")
	}
	return nil
}
