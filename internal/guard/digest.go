package guard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// digestDomain separates operation digests from anything else the same key
// might ever be used for, and versions the encoding.
const digestDomain = "countersign operation digest v1"

// Digest is the keyed digest of everything that decides what an operation
// does (DESIGN.md invariant 4): HMAC-SHA256 under the deployment secret over
// length-prefixed fields, so no two different operations share an encoding
// however their bytes are split between fields. The fields, in order:
// dialect, resource, search_path, role, schema, in-transaction, text, the
// parameter count, then each parameter's format, type, null flag and bytes.
//
// An approval is bound to this digest: any change to any field (a literal, a
// space, a different search_path, another parameter) needs its own review.
func Digest(key []byte, dialect, resource string, st State, text string, params []Param) []byte {
	m := hmac.New(sha256.New, key)
	field(m, []byte(digestDomain))
	field(m, []byte(dialect))
	field(m, []byte(resource))
	field(m, []byte(st.SearchPath))
	field(m, []byte(st.Role))
	field(m, []byte(st.Schema))
	field(m, []byte{boolByte(st.InTransaction)})
	field(m, []byte(text))
	field(m, binary.BigEndian.AppendUint64(nil, uint64(len(params))))
	for _, p := range params {
		field(m, binary.BigEndian.AppendUint16(nil, uint16(p.Format)))
		field(m, binary.BigEndian.AppendUint32(nil, p.Type))
		field(m, []byte{boolByte(p.Null)})
		field(m, p.Value)
	}
	return m.Sum(nil)
}

// field writes an 8-byte big-endian length, then the bytes.
func field(h hash.Hash, b []byte) {
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
	h.Write(b)
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
