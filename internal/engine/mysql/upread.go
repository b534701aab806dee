package mysql

import (
	"bufio"
	"fmt"
	"io"
)

// The upstream's packets are read here, not by go-mysql's packet.Conn
// (which keeps only the writes): its reader copies each packet three times
// through pooled buffers, a measurable share of the engine's CPU per point
// select. A packet that fits the read buffer is returned in place.

// ReadPacket reads one logical packet into a slice of its own.
func (u *upstream) ReadPacket() ([]byte, error) {
	p, err := u.readTransient()
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), p...), nil
}

// readTransient reads one logical packet, valid until the next read from
// the upstream.
func (u *upstream) readTransient() ([]byte, error) {
	n, err := u.readHeader()
	if err != nil {
		return nil, err
	}
	if n < maxPayload && 4+n <= u.br.Size() {
		if p, err := u.br.Peek(4 + n); err == nil {
			_, _ = u.br.Discard(4 + n)
			return p[4:], nil
		} else if err != bufio.ErrBufferFull {
			return nil, fmt.Errorf("reading from the upstream: %w", err)
		}
	}
	u.buf = u.buf[:0]
	for {
		if _, err := u.br.Discard(4); err != nil {
			return nil, err
		}
		start := len(u.buf)
		u.buf = growTo(u.buf, start+n)
		if _, err := io.ReadFull(u.br, u.buf[start:]); err != nil {
			return nil, fmt.Errorf("reading from the upstream: %w", err)
		}
		if n < maxPayload {
			p := u.buf
			if cap(u.buf) > upReadKeep {
				u.buf = nil
			}
			return p, nil
		}
		if n, err = u.readHeader(); err != nil {
			return nil, err
		}
	}
}

// readHeader peeks at the next packet's header (left in the buffer),
// checks its sequence number and returns its payload length.
func (u *upstream) readHeader() (int, error) {
	h, err := u.br.Peek(4)
	if err != nil {
		return 0, fmt.Errorf("reading from the upstream: %w", err)
	}
	if h[3] != u.Sequence {
		return 0, fmt.Errorf("the upstream sent packet %d, expected %d", h[3], u.Sequence)
	}
	u.Sequence++
	return int(h[0]) | int(h[1])<<8 | int(h[2])<<16, nil
}
