package pgmask

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"strconv"
)

// Detectors read text. A value whose bytes are not the text a person
// would read (a binary float8, a bytea, money, an array or composite of
// them) is decoded first into the text the detectors scan: the client
// decodes it too, so a card number kept in a float8 or a bytea is a card
// number to whoever reads the result. A value that matches is masked
// whole; one that cannot be decoded is masked whole too (fail closed).

// shapeKind says how a type's binary value is decoded for the detectors.
type shapeKind uint8

const (
	shapeUnknown    shapeKind = iota // cannot be decoded: masked whole
	shapeNone                        // nothing a detector finds (bool, date, uuid, int4 ...)
	shapeText                        // the bytes are the text (text, enum, bytea, json ...)
	shapeJSONB                       // a version byte, then json text
	shapeInt8                        // 8-byte integer
	shapeNumeric                     // numeric's base-10000 digits
	shapeFloat4                      // IEEE 754 single
	shapeFloat8                      // IEEE 754 double
	shapeMoney                       // int64 in the currency's smallest unit
	shapeUint32                      // oid, xid, cid, reg* types
	shapeUint64                      // xid8
	shapeLSN                         // pg_lsn
	shapeInet                        // inet, cidr
	shapeMac                         // macaddr, macaddr8
	shapeFloats                      // geometric types: a header of skip bytes, then float8s
	shapeBits                        // bit, varbit
	shapeTid                         // tid
	shapeArray                       // any array: the element type is in the value
	shapeRecord                      // a composite: each field's type is in the value
	shapeRange                       // a range of sub
	shapeMultirange                  // a multirange of sub
)

type typeShape struct {
	kind shapeKind
	sub  uint32 // range and multirange: the subtype
	skip int    // shapeFloats: header bytes before the float8s
}

// builtinShapes are the built-in types, answered without a lookup.
var builtinShapes = map[uint32]typeShape{
	16: {kind: shapeNone}, 21: {kind: shapeNone}, 23: {kind: shapeNone}, 1082: {kind: shapeNone},
	1083: {kind: shapeNone}, 1114: {kind: shapeNone}, 1184: {kind: shapeNone}, 1186: {kind: shapeNone},
	1266: {kind: shapeNone}, 2950: {kind: shapeNone},
	17: {kind: shapeText}, 18: {kind: shapeText}, 19: {kind: shapeText}, 25: {kind: shapeText}, 114: {kind: shapeText},
	142: {kind: shapeText}, 705: {kind: shapeText}, 1042: {kind: shapeText}, 1043: {kind: shapeText},
	1790: {kind: shapeText},                            // refcursor
	3802: {kind: shapeJSONB}, 4072: {kind: shapeJSONB}, // jsonpath: a version byte too
	20: {kind: shapeInt8}, 1700: {kind: shapeNumeric}, 700: {kind: shapeFloat4}, 701: {kind: shapeFloat8},
	790: {kind: shapeMoney},
	24:  {kind: shapeUint32}, 26: {kind: shapeUint32}, 28: {kind: shapeUint32}, 29: {kind: shapeUint32},
	2202: {kind: shapeUint32}, 2203: {kind: shapeUint32}, 2204: {kind: shapeUint32}, 2205: {kind: shapeUint32},
	2206: {kind: shapeUint32}, 4096: {kind: shapeUint32}, 4089: {kind: shapeUint32}, 3734: {kind: shapeUint32},
	3769: {kind: shapeUint32}, 4191: {kind: shapeUint32},
	5069: {kind: shapeUint64}, 3220: {kind: shapeLSN},
	869: {kind: shapeInet}, 650: {kind: shapeInet}, 829: {kind: shapeMac}, 774: {kind: shapeMac},
	600: {kind: shapeFloats}, 601: {kind: shapeFloats}, 603: {kind: shapeFloats}, 628: {kind: shapeFloats},
	718: {kind: shapeFloats}, 602: {kind: shapeFloats, skip: 5}, 604: {kind: shapeFloats, skip: 4},
	1560: {kind: shapeBits}, 1562: {kind: shapeBits}, 27: {kind: shapeTid},
	2249: {kind: shapeRecord},
	3904: {kind: shapeRange, sub: 23}, 3906: {kind: shapeRange, sub: 1700}, 3908: {kind: shapeRange, sub: 1114},
	3910: {kind: shapeRange, sub: 1184}, 3912: {kind: shapeRange, sub: 1082}, 3926: {kind: shapeRange, sub: 20},
	4451: {kind: shapeMultirange, sub: 23}, 4532: {kind: shapeMultirange, sub: 1700}, 4533: {kind: shapeMultirange, sub: 1114},
	4534: {kind: shapeMultirange, sub: 1184}, 4535: {kind: shapeMultirange, sub: 1082}, 4536: {kind: shapeMultirange, sub: 20},
}

// builtinArrays are the array types of the built-in types above.
var builtinArrays = []uint32{1000, 1001, 1002, 1003, 1005, 1007, 1009, 1014, 1015, 1016, 1017, 1018, 1019, 1020,
	1021, 1022, 1027, 1028, 1010, 1011, 1012, 1040, 1041, 1115, 1182, 1183, 1185, 1187, 1231, 1270, 1561, 1563,
	199, 143, 629, 651, 719, 775, 791, 2287, 2951, 3221, 3807, 3905, 3907, 3909, 3911, 3913, 3927, 271, 1008,
	22, 30} // int2vector and oidvector are sent as arrays

func init() {
	for _, oid := range builtinArrays {
		builtinShapes[oid] = typeShape{kind: shapeArray}
	}
}

// maxScanDepth bounds the nesting of arrays, ranges and composites the
// decoder follows; a deeper value is masked whole.
const maxScanDepth = 16

// scanner decodes binary values into the text the detectors read, one
// part per line (a match cannot span two array elements).
type scanner struct {
	// shape answers the types that are not built in (a composite, an
	// enum, a domain's base); ok false: unknown.
	shape func(oid uint32) (typeShape, bool)
	out   []byte
}

// binaryText returns the text the detectors read of a binary-format value
// of type oid; ok is false when it cannot be decoded.
func binaryText(oid uint32, v []byte, shape func(uint32) (typeShape, bool)) (text []byte, ok bool) {
	s := scanner{shape: shape}
	if !s.value(oid, v, 0) {
		return nil, false
	}
	return s.out, true
}

func (s *scanner) shapeOf(oid uint32) (typeShape, bool) {
	if sh, ok := builtinShapes[oid]; ok {
		return sh, true
	}
	if s.shape == nil {
		return typeShape{}, false
	}
	return s.shape(oid)
}

func (s *scanner) line(b []byte) {
	s.out = append(append(s.out, b...), '\n')
}

func (s *scanner) value(oid uint32, v []byte, depth int) bool {
	sh, ok := s.shapeOf(oid)
	if !ok || depth > maxScanDepth {
		return false
	}
	switch sh.kind {
	case shapeNone:
		return true
	case shapeText:
		s.line(v)
		return true
	case shapeJSONB:
		if len(v) == 0 || v[0] != 1 {
			return false
		}
		s.line(v[1:])
		return true
	case shapeArray:
		return s.array(v, depth)
	case shapeRecord:
		return s.record(v, depth)
	case shapeRange:
		return s.rangeValue(sh.sub, v, depth)
	case shapeMultirange:
		return s.multirange(sh.sub, v, depth)
	}
	t, ok := scalarText(sh, v)
	if ok {
		s.line(t)
	}
	return ok
}

// scalarText renders a binary scalar as the text the detectors read.
func scalarText(sh typeShape, v []byte) ([]byte, bool) {
	switch sh.kind {
	case shapeInt8:
		if len(v) != 8 {
			return nil, false
		}
		return strconv.AppendInt(nil, int64(binary.BigEndian.Uint64(v)), 10), true
	case shapeNumeric:
		return numericText(v)
	case shapeFloat4:
		if len(v) != 4 {
			return nil, false
		}
		return plainFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 32), true
	case shapeFloat8:
		if len(v) != 8 {
			return nil, false
		}
		return plainFloat(math.Float64frombits(binary.BigEndian.Uint64(v)), 64), true
	case shapeMoney:
		if len(v) != 8 {
			return nil, false
		}
		return moneyText(int64(binary.BigEndian.Uint64(v))), true
	case shapeUint32:
		if len(v) != 4 {
			return nil, false
		}
		return strconv.AppendUint(nil, uint64(binary.BigEndian.Uint32(v)), 10), true
	case shapeUint64:
		if len(v) != 8 {
			return nil, false
		}
		return strconv.AppendUint(nil, binary.BigEndian.Uint64(v), 10), true
	case shapeLSN:
		if len(v) != 8 {
			return nil, false
		}
		n := binary.BigEndian.Uint64(v)
		return fmt.Appendf(nil, "%X/%X", n>>32, uint32(n)), true
	case shapeTid:
		if len(v) != 6 {
			return nil, false
		}
		return fmt.Appendf(nil, "(%d,%d)", binary.BigEndian.Uint32(v), binary.BigEndian.Uint16(v[4:])), true
	case shapeInet:
		return inetText(v)
	case shapeMac:
		return macText(v)
	case shapeFloats:
		return floatsText(v, sh.skip)
	case shapeBits:
		return bitsText(v)
	}
	return nil, false
}

// plainFloat writes a float without an exponent: 4111111111111111, not
// 4.111111111111111e+15 (float8out's form, which no detector reads).
func plainFloat(f float64, bits int) []byte {
	return strconv.AppendFloat(nil, f, 'f', -1, bits)
}

// moneyText writes an amount in the currency's smallest unit as the
// detectors should read it whatever lc_monetary's number of fraction
// digits: the whole amount, and its units for 2 and for 3 fraction digits.
func moneyText(c int64) []byte {
	out := strconv.AppendInt(nil, c, 10)
	for _, d := range []int64{100, 1000} {
		out = append(out, '\n')
		out = strconv.AppendInt(out, c/d, 10)
	}
	return out
}

func inetText(v []byte) ([]byte, bool) {
	if len(v) < 4 || int(v[3]) != len(v)-4 {
		return nil, false
	}
	addr, ok := netip.AddrFromSlice(v[4:])
	if !ok {
		return nil, false
	}
	return []byte(addr.String()), true
}

func macText(v []byte) ([]byte, bool) {
	if len(v) != 6 && len(v) != 8 {
		return nil, false
	}
	var out []byte
	for i, b := range v {
		if i > 0 {
			out = append(out, ':')
		}
		out = fmt.Appendf(out, "%02x", b)
	}
	return out, true
}

func floatsText(v []byte, skip int) ([]byte, bool) {
	if len(v) < skip || (len(v)-skip)%8 != 0 {
		return nil, false
	}
	var out []byte
	for p := skip; p < len(v); p += 8 {
		out = append(out, plainFloat(math.Float64frombits(binary.BigEndian.Uint64(v[p:])), 64)...)
		out = append(out, ' ')
	}
	return out, true
}

func bitsText(v []byte) ([]byte, bool) {
	if len(v) < 4 {
		return nil, false
	}
	n := int(int32(binary.BigEndian.Uint32(v)))
	if n < 0 || (n+7)/8 != len(v)-4 {
		return nil, false
	}
	out := make([]byte, n)
	for i := range n {
		out[i] = '0' + v[4+i/8]>>(7-uint(i%8))&1
	}
	return out, true
}

// reader walks a binary value; a read past its end sets bad.
type reader struct {
	v   []byte
	p   int
	bad bool
}

func (r *reader) int32() int {
	if r.p+4 > len(r.v) {
		r.bad = true
		return 0
	}
	n := int(int32(binary.BigEndian.Uint32(r.v[r.p:])))
	r.p += 4
	return n
}

// field returns a length-prefixed field; null for length -1.
func (r *reader) field() (b []byte, null bool) {
	n := r.int32()
	switch {
	case r.bad:
		return nil, false
	case n == -1:
		return nil, true
	case n < 0 || r.p+n > len(r.v):
		r.bad = true
		return nil, false
	}
	b = r.v[r.p : r.p+n]
	r.p += n
	return b, false
}

func (r *reader) done() bool { return !r.bad && r.p == len(r.v) }

// array reads array_send's form: ndim, flags, element type, ndim
// (length, lower bound) pairs, then each element length-prefixed.
func (s *scanner) array(v []byte, depth int) bool {
	r := &reader{v: v}
	ndim := r.int32()
	r.int32() // has-nulls flag
	elem := uint32(r.int32())
	if r.bad || ndim < 0 || ndim > 6 {
		return false
	}
	n := 0
	if ndim > 0 {
		n = 1
	}
	for range ndim {
		d := r.int32()
		r.int32() // lower bound
		if r.bad || d < 0 || (d > 0 && n > len(v)/d) {
			return false
		}
		n *= d
	}
	return s.fields(r, n, func(r *reader) uint32 { return elem }, depth)
}

// record reads record_send's form: the field count, then each field's
// type and length-prefixed value.
func (s *scanner) record(v []byte, depth int) bool {
	r := &reader{v: v}
	n := r.int32()
	if r.bad || n < 0 || n > len(v)/8 {
		return false
	}
	return s.fields(r, n, func(r *reader) uint32 { return uint32(r.int32()) }, depth)
}

// fields decodes n length-prefixed values, each of the type typ reads.
func (s *scanner) fields(r *reader, n int, typ func(*reader) uint32, depth int) bool {
	for range n {
		oid := typ(r)
		b, null := r.field()
		if r.bad {
			return false
		}
		if !null && !s.value(oid, b, depth+1) {
			return false
		}
	}
	return r.done()
}

// Range flags (rangetypes.h).
const (
	rangeEmpty = 0x01
	rangeLBInf = 0x08
	rangeUBInf = 0x10
)

// rangeValue reads range_send's form: a flags byte, then the bounds that
// are not infinite, length-prefixed.
func (s *scanner) rangeValue(sub uint32, v []byte, depth int) bool {
	if len(v) < 1 {
		return false
	}
	flags := v[0]
	r := &reader{v: v, p: 1}
	if flags&rangeEmpty != 0 {
		return r.done()
	}
	for _, inf := range []byte{rangeLBInf, rangeUBInf} {
		if flags&inf != 0 {
			continue
		}
		b, null := r.field()
		if r.bad || null || !s.value(sub, b, depth+1) {
			return false
		}
	}
	return r.done()
}

// multirange reads multirange_send's form: a count, then each range
// length-prefixed.
func (s *scanner) multirange(sub uint32, v []byte, depth int) bool {
	r := &reader{v: v}
	n := r.int32()
	if r.bad || n < 0 || n > len(v)/4 {
		return false
	}
	for range n {
		b, null := r.field()
		if r.bad || null || !s.rangeValue(sub, b, depth+1) {
			return false
		}
	}
	return r.done()
}
