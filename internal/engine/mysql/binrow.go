package mysql

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
)

// binVal is one value of a binary-protocol result row.
type binVal struct {
	null  bool
	raw   []byte // the value's encoding as received (length prefix included); nil once changed
	value []byte // its content: the string bytes, or the fixed-size number
}

var errBinaryRow = errors.New("malformed binary row from the upstream")

// parseBinaryRow splits a binary-protocol row (0x00, NULL bitmap with an
// offset of 2 bits, then the non-NULL values encoded by column type). The
// values alias p.
func parseBinaryRow(p []byte, cols []Column) ([]binVal, error) {
	n := len(cols)
	nb := (n + 7 + 2) / 8
	if len(p) < 1+nb || p[0] != 0x00 {
		return nil, errBinaryRow
	}
	bitmap := p[1 : 1+nb]
	if !cleanBitmap(bitmap, n) {
		return nil, errBinaryRow
	}
	cur := &cursor{b: p[1+nb:]}
	vals := make([]binVal, n)
	for i := range vals {
		if bitmap[(i+2)/8]&(1<<((i+2)%8)) != 0 {
			vals[i].null = true
			continue
		}
		start := cur.b
		v, err := binaryValue(cur, cols[i].Type)
		if err != nil {
			return nil, errBinaryRow
		}
		vals[i].value = v
		vals[i].raw = start[:len(start)-len(cur.b)]
	}
	if len(cur.b) != 0 {
		return nil, errBinaryRow
	}
	return vals, nil
}

// appendBinaryRow encodes a binary-protocol row: the bitmap rebuilt from
// the values, every changed value (raw nil) as a length-encoded string.
func appendBinaryRow(dst []byte, vals []binVal) []byte {
	nb := (len(vals) + 7 + 2) / 8
	dst = append(dst, 0x00)
	start := len(dst)
	dst = append(dst, make([]byte, nb)...)
	for i, v := range vals {
		switch {
		case v.null:
			dst[start+(i+2)/8] |= 1 << ((i + 2) % 8)
		case v.raw != nil:
			dst = append(dst, v.raw...)
		default:
			dst = appendLenenc(dst, uint64(len(v.value)))
			dst = append(dst, v.value...)
		}
	}
	return dst
}

const flagUnsigned = 0x20

// binaryText renders a fixed-size binary number or a BIT as the text the
// detectors read (a card number stored as BIGINT or BIT(64)); other values
// are given as they are.
func binaryText(c Column, v []byte) []byte {
	unsigned := c.Flags&flagUnsigned != 0
	var i int64
	var u uint64
	switch {
	case c.Type == 0x01 && len(v) == 1:
		i, u = int64(int8(v[0])), uint64(v[0])
	case (c.Type == 0x02 || c.Type == 0x0d) && len(v) == 2:
		x := binary.LittleEndian.Uint16(v)
		i, u = int64(int16(x)), uint64(x)
	case (c.Type == 0x03 || c.Type == 0x09) && len(v) == 4:
		x := binary.LittleEndian.Uint32(v)
		i, u = int64(int32(x)), uint64(x)
	case c.Type == 0x08 && len(v) == 8:
		u = binary.LittleEndian.Uint64(v)
		i = int64(u)
	case c.Type == 0x04 && len(v) == 4:
		return strconv.AppendFloat(nil, float64(math.Float32frombits(binary.LittleEndian.Uint32(v))), 'f', -1, 32)
	case c.Type == 0x05 && len(v) == 8:
		return strconv.AppendFloat(nil, math.Float64frombits(binary.LittleEndian.Uint64(v)), 'f', -1, 64)
	case c.Type == 0x10 && len(v) > 0 && len(v) <= 8: // BIT(n): big-endian bytes
		for _, b := range v {
			u = u<<8 | uint64(b)
		}
		return strconv.AppendUint(nil, u, 10)
	default:
		return v
	}
	if unsigned {
		return strconv.AppendUint(nil, u, 10)
	}
	return strconv.AppendInt(nil, i, 10)
}

// cleanBitmap reports whether the bitmap's reserved bits (the first two,
// and those past the last column) are clear.
func cleanBitmap(bitmap []byte, n int) bool {
	if bitmap[0]&0x03 != 0 {
		return false
	}
	for bit := n + 2; bit < len(bitmap)*8; bit++ {
		if bitmap[bit/8]&(1<<(bit%8)) != 0 {
			return false
		}
	}
	return true
}
