// Package webhook tells people what happened to reviews: it POSTs a JSON
// document (or a Slack-compatible {"text": ...}) to each configured webhook
// when a review is created, decided, expired, a grant starts or ends, and on
// break-glass. review.Options.Events takes Notifier.Notify.
//
// Delivery is best effort and never on the caller's path: Notify only
// queues, on a bounded queue per webhook, and returns at once; a full queue
// drops the notification, counts it (Dropped) and logs a warning. One
// worker per webhook sends, retrying network errors, 429 and 5xx answers
// with exponential backoff, a bounded number of times. Notifications are a
// convenience, never a control: the recording is the record, and no review
// waits for a webhook.
//
// Every request is signed when the webhook has a secret:
//
//	X-Countersign-Timestamp: <unix seconds>
//	X-Countersign-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The timestamp is inside the signed content, so a receiver that refuses
// old timestamps (Verify does, beyond its tolerance) cannot be fed a
// replayed request. X-Countersign-Delivery names the notification and stays
// the same across retries, so a receiver can drop a duplicate.
//
// It fails closed in what it sends: a notification that cannot be encoded
// is dropped (and logged), never sent half-built, and texts pass through the
// caller's Redact before they leave. The statement, the reason and the
// comment are redacted whole and only then clipped (a value cut at the clip
// would no longer match its detector); the statement's password literals
// are masked first (sqlkind.MaskPasswords), with or without a Redact.
// Secrets are never logged.
package webhook
