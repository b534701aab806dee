package recording

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Domain tags keep an event encoding from ever being read as a checkpoint
// encoding (or as a later version of either).
const (
	eventTag      = "countersign.event.v1"
	checkpointTag = "countersign.checkpoint.v1"
)

// HashSize is the length of every chain hash (SHA-256).
const HashSize = sha256.Size

// zeroHash is the PrevHash of a chain that has no predecessor.
var zeroHash = make([]byte, HashSize)

// AppendCanonical appends the canonical encoding of e to dst: the tag
// "countersign.event.v1", then writer, seq, time, type, session, resource,
// actor and data. Strings and bytes are a big-endian uint32 length followed
// by the bytes; seq and time (Unix nanoseconds, UTC) are big-endian int64.
// PrevHash and Hash are not part of it.
func AppendCanonical(dst []byte, e Stored) []byte {
	dst = appendField(dst, eventTag)
	dst = appendField(dst, e.Writer)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Seq))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Time.UnixNano()))
	dst = appendField(dst, e.Type)
	dst = appendField(dst, e.Session)
	dst = appendField(dst, e.Resource)
	dst = appendField(dst, e.Actor)
	return appendField(dst, e.Data)
}

// ChainHash returns SHA-256(prev || canonical(e)), the Hash e must carry.
// buf is scratch space that may be reused across calls; the grown buffer is
// returned with the hash.
func ChainHash(buf, prev []byte, e Stored) (hash, grown []byte) {
	return appendChainHash(make([]byte, 0, HashSize), buf, prev, e)
}

// appendChainHash appends e's chain hash to dst: the committer hashes a
// batch into one block instead of an allocation per event.
func appendChainHash(dst, buf, prev []byte, e Stored) (_, grown []byte) {
	grown = append(buf[:0], prev...)
	grown = AppendCanonical(grown, e)
	sum := sha256.Sum256(grown)
	return append(dst, sum[:]...), grown
}

// checkpointMessage is what a checkpoint signature covers: the tag
// "countersign.checkpoint.v1", writer, seq, hash, time (Unix nanoseconds)
// and the final flag (one byte), in the same length-prefixed form.
func checkpointMessage(c Checkpoint) []byte {
	b := make([]byte, 0, 64+len(c.Writer)+len(c.Hash))
	b = appendField(b, checkpointTag)
	b = appendField(b, c.Writer)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
	b = appendField(b, c.Hash)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixNano()))
	if c.Final {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendField[T ~string | ~[]byte](dst []byte, v T) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
	return append(dst, v...)
}

// eventTime is the time an event carries: UTC, cut to microseconds so that
// every store (PostgreSQL keeps microseconds) gives back the exact value
// the hash covers.
func eventTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
