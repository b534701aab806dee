package guard

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
)

// digestDomain separates operation digests from anything else the same key
// might ever be used for, and versions the encoding.
const digestDomain = "countersign operation digest v1"

// Digest is the keyed digest of everything that decides what an operation
// does (DESIGN.md invariant 4): HMAC-SHA256 under the deployment secret over
// length-prefixed fields, so no two different operations share an encoding
// however their bytes are split between fields. The fields, in order:
// dialect, resource, search_path, role, schema, in-transaction, text, the
// parameter count, then each parameter's format, type, null flag and bytes;
// then, only for an operation that reads MySQL user variables, a tag, their
// names and their values (a trailing field: every other operation's
// digest is what it was before the field existed, and the encoding stays
// unambiguous since the fields before it delimit themselves).
//
// An approval is bound to this digest: any change to any field (a literal, a
// space, a different search_path, another parameter) needs its own review.
func Digest(key []byte, dialect, resource string, st State, text string, params []Param) []byte {
	d := getDigester(key)
	b := d.buf[:0]
	b = str(b, digestDomain)
	b = str(b, dialect)
	b = str(b, resource)
	b = str(b, st.SearchPath)
	b = str(b, st.Role)
	b = str(b, st.Schema)
	b = binary.BigEndian.AppendUint64(b, 1)
	b = append(b, boolByte(st.InTransaction))
	b = str(b, text)
	b = binary.BigEndian.AppendUint64(b, 8)
	b = binary.BigEndian.AppendUint64(b, uint64(len(params)))
	for _, p := range params {
		b = binary.BigEndian.AppendUint64(b, 2)
		b = binary.BigEndian.AppendUint16(b, uint16(p.Format))
		b = binary.BigEndian.AppendUint64(b, 4)
		b = binary.BigEndian.AppendUint32(b, p.Type)
		b = binary.BigEndian.AppendUint64(b, 1)
		b = append(b, boolByte(p.Null))
		b = str(b, p.Value)
	}
	if st.Variables != "" || len(st.VariableValues) > 0 {
		b = str(b, "user variables")
		b = str(b, st.Variables)
		b = str(b, st.VariableValues)
	}
	d.mac.Write(b)
	sum := d.mac.Sum(make([]byte, 0, sha256.Size))
	if cap(b) <= maxDigestBuf {
		d.buf = b // a huge statement's buffer is not kept
	}
	digesters.Put(d)
	return sum
}

// maxDigestBuf bounds the encoding buffer a pooled digester keeps.
const maxDigestBuf = 64 << 10

// digester is one reusable HMAC with the buffer the fields are encoded
// into: a digest is taken for every operation, and a fresh HMAC with a
// write per field cost a dozen allocations.
type digester struct {
	key []byte
	mac hash.Hash
	buf []byte
}

var digesters sync.Pool

// getDigester returns a reset HMAC under key; one made for another key
// (tests use several) is replaced.
func getDigester(key []byte) *digester {
	d, _ := digesters.Get().(*digester)
	if d == nil || !bytes.Equal(d.key, key) {
		return &digester{key: bytes.Clone(key), mac: hmac.New(sha256.New, key)}
	}
	d.mac.Reset()
	return d
}

// str appends one field: an 8-byte big-endian length, then the bytes.
func str[T ~string | ~[]byte](b []byte, v T) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
	return append(b, v...)
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
