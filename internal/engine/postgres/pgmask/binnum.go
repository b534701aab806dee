package pgmask

import (
	"encoding/binary"
	"strconv"
)

// numericText renders PostgreSQL's binary numeric (ndigits, weight, sign,
// dscale, then base-10000 digits) as numeric_out would, so the detectors
// read a card number kept in a numeric whichever format the client asked
// for (scan.go).
func numericText(v []byte) ([]byte, bool) {
	if len(v) < 8 {
		return nil, false
	}
	ndigits := int(binary.BigEndian.Uint16(v[0:]))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int(binary.BigEndian.Uint16(v[6:]))
	if len(v) != 8+2*ndigits || dscale > 0x3FFF {
		return nil, false
	}
	switch sign {
	case 0xC000:
		return []byte("NaN"), true
	case 0xD000:
		return []byte("Infinity"), true
	case 0xF000:
		return []byte("-Infinity"), true
	case 0x0000, 0x4000:
	default:
		return nil, false
	}
	digit := func(i int) int {
		if i < 0 || i >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(v[8+2*i:]))
	}
	var out []byte
	if sign == 0x4000 {
		out = append(out, '-')
	}
	if weight < 0 {
		out = append(out, '0')
	} else {
		out = strconv.AppendInt(out, int64(digit(0)), 10)
		for i := 1; i <= weight; i++ {
			out = appendGroup(out, digit(i))
		}
	}
	if dscale > 0 {
		out = append(out, '.')
		frac := make([]byte, 0, dscale+4)
		for i := weight + 1; len(frac) < dscale; i++ {
			frac = appendGroup(frac, digit(i))
		}
		out = append(out, frac[:dscale]...)
	}
	return out, true
}

// appendGroup appends one base-10000 digit as four decimal digits.
func appendGroup(b []byte, d int) []byte {
	return append(b, byte('0'+d/1000%10), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
}
