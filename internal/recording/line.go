package recording

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Line is one JSON line of an export, a file sink or a witness file: an
// event (Kind "event") or a checkpoint (Kind "checkpoint"). Hashes are hex,
// the signature base64 (encoding/json's []byte form). Data is the event's
// data byte for byte, so the hash can be recomputed from the line alone.
type Line struct {
	Kind      string          `json:"kind"`
	Writer    string          `json:"writer"`
	Seq       int64           `json:"seq"`
	Time      time.Time       `json:"time"`
	Type      string          `json:"type,omitempty"`
	Session   string          `json:"session,omitempty"`
	Resource  string          `json:"resource,omitempty"`
	Actor     string          `json:"actor,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	PrevHash  hexBytes        `json:"prev_hash,omitempty"`
	Hash      hexBytes        `json:"hash"`
	Signature []byte          `json:"signature,omitempty"`
	KeyID     string          `json:"key_id,omitempty"`
	Final     bool            `json:"final,omitempty"`
}

// Line kinds.
const (
	LineEvent      = "event"
	LineCheckpoint = "checkpoint"
)

// EventLine is the line of a stored event.
func EventLine(e Stored) Line {
	return Line{Kind: LineEvent, Writer: e.Writer, Seq: e.Seq, Time: e.Time.UTC(),
		Type: e.Type, Session: e.Session, Resource: e.Resource, Actor: e.Actor,
		Data: e.Data, PrevHash: e.PrevHash, Hash: e.Hash}
}

// CheckpointLine is the line of a checkpoint.
func CheckpointLine(c Checkpoint) Line {
	return Line{Kind: LineCheckpoint, Writer: c.Writer, Seq: c.Seq, Time: c.Time.UTC(),
		Hash: c.Hash, Signature: c.Signature, KeyID: c.KeyID, Final: c.Final}
}

// Stored returns the event a line holds.
func (l Line) Stored() Stored {
	return Stored{Writer: l.Writer, Seq: l.Seq, Time: l.Time, Type: l.Type,
		Session: l.Session, Resource: l.Resource, Actor: l.Actor,
		Data: l.Data, PrevHash: l.PrevHash, Hash: l.Hash}
}

// Checkpoint returns the checkpoint a line holds.
func (l Line) Checkpoint() Checkpoint {
	return Checkpoint{Writer: l.Writer, Seq: l.Seq, Time: l.Time, Hash: l.Hash,
		Signature: l.Signature, KeyID: l.KeyID, Final: l.Final}
}

// marshalLine is one line with its newline. Data is already compact JSON
// (Append makes it so), which encoding/json leaves unchanged.
func marshalLine(l Line) []byte {
	b, err := json.Marshal(l)
	if err != nil { // only a hand-made invalid Data can get here
		b, _ = json.Marshal(Line{Kind: l.Kind, Writer: l.Writer, Seq: l.Seq, Hash: l.Hash,
			Type: fmt.Sprintf("unencodable: %v", err)})
	}
	return append(b, '\n')
}

type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, h), nil }

func (h *hexBytes) UnmarshalText(b []byte) error {
	out, err := hex.AppendDecode(nil, b)
	if err != nil {
		return fmt.Errorf("hash %.80q is not hex", b)
	}
	*h = out
	return nil
}
