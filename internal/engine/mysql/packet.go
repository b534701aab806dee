package mysql

import (
	"errors"
	"fmt"
	"io"
)

// maxPayload is the largest payload of one wire packet; a logical packet of
// that size or more continues in the next one.
const maxPayload = 0xffffff

// errPacketTooLarge ends a session whose client sent more than
// limits.max_message_bytes in one logical packet.
var errPacketTooLarge = errors.New("packet exceeds limits.max_message_bytes")

// errSequence ends a session whose client numbered its packets wrongly.
var errSequence = errors.New("packet out of sequence")

// packetReader reads the client's logical packets. go-mysql's packet.Conn
// is not used on this side: it has no size limit, so a client could make
// the gateway allocate whatever length it claims (16 MiB per fragment and
// any number of fragments). The limit is set at construction.
type packetReader struct {
	r   io.Reader
	max int
	seq uint8
	hdr [4]byte
	buf []byte
}

func newPacketReader(r io.Reader, max int) *packetReader {
	return &packetReader{r: r, max: max}
}

// next returns the next logical packet's payload, valid until the next call.
// A packet longer than the limit is an error: the session ends, since the
// rest of the stream can no longer be framed.
func (p *packetReader) next() ([]byte, error) {
	p.buf = p.buf[:0]
	for {
		if _, err := io.ReadFull(p.r, p.hdr[:]); err != nil {
			return nil, err
		}
		n := int(p.hdr[0]) | int(p.hdr[1])<<8 | int(p.hdr[2])<<16
		if p.hdr[3] != p.seq {
			return nil, fmt.Errorf("%w: got %d, want %d", errSequence, p.hdr[3], p.seq)
		}
		p.seq++
		if len(p.buf)+n > p.max {
			return nil, errPacketTooLarge
		}
		start := len(p.buf)
		p.buf = growTo(p.buf, start+n)
		if _, err := io.ReadFull(p.r, p.buf[start:]); err != nil {
			return nil, err
		}
		if n < maxPayload {
			return p.buf, nil
		}
	}
}

func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// appendPacket frames payload as wire packets with sequence numbers from
// *seq, appending to dst.
func appendPacket(dst, payload []byte, seq *uint8) []byte {
	for {
		n := min(len(payload), maxPayload)
		dst = append(dst, byte(n), byte(n>>8), byte(n>>16), *seq)
		dst = append(dst, payload[:n]...)
		*seq++
		payload = payload[n:]
		if n < maxPayload {
			return dst
		}
	}
}

// Packet payload readers. Each returns ok == false on short input instead
// of panicking: every byte here came from a client.

type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) u8() byte {
	if len(c.b) < 1 {
		c.bad = true
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) u16() uint16 {
	if len(c.b) < 2 {
		c.bad, c.b = true, nil
		return 0
	}
	v := uint16(c.b[0]) | uint16(c.b[1])<<8
	c.b = c.b[2:]
	return v
}

func (c *cursor) u32() uint32 {
	if len(c.b) < 4 {
		c.bad, c.b = true, nil
		return 0
	}
	v := uint32(c.b[0]) | uint32(c.b[1])<<8 | uint32(c.b[2])<<16 | uint32(c.b[3])<<24
	c.b = c.b[4:]
	return v
}

func (c *cursor) bytes(n int) []byte {
	if n < 0 || len(c.b) < n {
		c.bad, c.b = true, nil
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

// nulString reads up to a NUL (consumed); the whole rest when there is none
// and lenient is set.
func (c *cursor) nulString() []byte {
	for i, ch := range c.b {
		if ch == 0 {
			v := c.b[:i]
			c.b = c.b[i+1:]
			return v
		}
	}
	c.bad, c.b = true, nil
	return nil
}

// lenenc reads a length-encoded integer.
func (c *cursor) lenenc() (uint64, bool) {
	switch first := c.u8(); {
	case c.bad:
		return 0, false
	case first < 0xfb:
		return uint64(first), false
	case first == 0xfb:
		return 0, true // NULL in a text row
	case first == 0xfc:
		return uint64(c.u16()), false
	case first == 0xfd:
		b := c.bytes(3)
		if c.bad {
			return 0, false
		}
		return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16, false
	case first == 0xfe:
		lo, hi := c.u32(), c.u32()
		return uint64(lo) | uint64(hi)<<32, false
	default:
		c.bad = true
		return 0, false
	}
}

// lenencBytes reads a length-encoded string.
func (c *cursor) lenencBytes() []byte {
	n, null := c.lenenc()
	if c.bad || null {
		c.bad = c.bad || null
		return nil
	}
	if n > uint64(len(c.b)) {
		c.bad, c.b = true, nil
		return nil
	}
	return c.bytes(int(n))
}

func appendLenenc(dst []byte, n uint64) []byte {
	switch {
	case n < 0xfb:
		return append(dst, byte(n))
	case n <= 0xffff:
		return append(dst, 0xfc, byte(n), byte(n>>8))
	case n <= 0xffffff:
		return append(dst, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	}
	return append(dst, 0xfe, byte(n), byte(n>>8), byte(n>>16), byte(n>>24),
		byte(n>>32), byte(n>>40), byte(n>>48), byte(n>>56))
}
