package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/countersign/countersign/internal/recording"
)

// The journal's file format (journal.go says why it exists).
//
//	segment = header record*
//	header  = "CSJRNL" u16le(version = 1)                 8 bytes
//	record  = u32le(len) u32le(CRC-32C(payload)) payload  one AppendEvents call
//	payload = uvarint(n) event{n}
//	event   = str(writer) varint(seq) varint(time) str(type) str(session)
//	          str(resource) str(actor) bytes(data) bytes(prev_hash) bytes(hash)
//	str     = uvarint(len) byte{len}
//	bytes   = uvarint(len+1) byte{len}, or uvarint(0) for nil
//
// time is unix nanoseconds as SQLite stores it (toNanos: 0 is the zero
// time), so an event read back from the journal is the event SQLite would
// have given back, byte for byte and to the nanosecond. nil and empty
// byte slices stay apart, so the insert binds exactly what it bound when
// SQLite was the durable medium.
const (
	journalMagic      = "CSJRNL\x01\x00"
	journalHeaderSize = len(journalMagic)
	recordHeaderSize  = 8
	// maxRecordPayload bounds a record's length field: a reader never
	// believes a longer one (a corrupt length would otherwise make it
	// allocate or skip gigabytes). A group commit is at most MaxBatch
	// events (1024 by default) of a few KiB each.
	maxRecordPayload = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends one framed record holding events to dst.
func appendRecord(dst []byte, events []recording.Stored) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, recordHeaderSize)...)
	dst = binary.AppendUvarint(dst, uint64(len(events)))
	for i := range events {
		var err error
		if dst, err = appendEvent(dst, &events[i]); err != nil {
			return dst[:start], err
		}
	}
	payload := dst[start+recordHeaderSize:]
	if len(payload) > maxRecordPayload {
		return dst[:start], fmt.Errorf("store: a batch of %d events is %d bytes, more than a journal record holds (%d)", len(events), len(payload), maxRecordPayload)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst, nil
}

func appendEvent(dst []byte, e *recording.Stored) ([]byte, error) {
	at, err := toNanos(e.Time)
	if err != nil {
		return dst, err
	}
	dst = appendStr(dst, e.Writer)
	dst = binary.AppendVarint(dst, e.Seq)
	dst = binary.AppendVarint(dst, at)
	dst = appendStr(dst, e.Type)
	dst = appendStr(dst, e.Session)
	dst = appendStr(dst, e.Resource)
	dst = appendStr(dst, e.Actor)
	dst = appendBytes(dst, e.Data)
	dst = appendBytes(dst, e.PrevHash)
	return appendBytes(dst, e.Hash), nil
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))+1)
	return append(dst, b...)
}

// errTorn is a record that is not all there: too short for its header or
// its length, or its CRC does not match.
var errTorn = errors.New("torn or corrupt record")

// readRecord reads the record at the start of b: its payload (a sub-slice
// of b) and the record's whole size. errTorn if there is no valid record.
func readRecord(b []byte) (payload []byte, size int, err error) {
	if len(b) < recordHeaderSize {
		return nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxRecordPayload || uint64(n) > uint64(len(b)-recordHeaderSize) {
		return nil, 0, errTorn
	}
	payload = b[recordHeaderSize : recordHeaderSize+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errTorn
	}
	return payload, recordHeaderSize + int(n), nil
}

// decodeRecord decodes a record's payload, appending its events to dst.
// The events' byte slices point into payload. A payload that does not
// decode whole is an error: its CRC matched, so it is not a torn write.
func decodeRecord(dst []recording.Stored, payload []byte) ([]recording.Stored, error) {
	d := decoder{b: payload}
	n := d.uvarint()
	// Every event takes at least 10 bytes (ten fields of one byte at
	// least): a count beyond that is a lie, refused before allocating.
	if d.err == nil && n > uint64(len(d.b))/10 {
		d.err = fmt.Errorf("count %d is more than %d bytes hold", n, len(d.b))
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var e recording.Stored
		e.Writer = d.str()
		e.Seq = d.varint()
		if at := d.varint(); at != math.MinInt64 { // toNanos never writes it
			e.Time = fromNanos(at)
		} else if d.err == nil {
			d.err = errors.New("time out of range")
		}
		e.Type = d.str()
		e.Session = d.str()
		e.Resource = d.str()
		e.Actor = d.str()
		e.Data = d.bytes()
		e.PrevHash = d.bytes()
		e.Hash = d.bytes()
		dst = append(dst, e)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the last event", len(d.b))
	}
	if d.err == nil && n == 0 {
		d.err = errors.New("no events")
	}
	if d.err != nil {
		return dst, fmt.Errorf("store: a journal record does not decode: %w", d.err)
	}
	return dst, nil
}

// decoder reads the payload's fields; the first error sticks and every
// later read returns zero values.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated field")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.take(d.uvarint())) }

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	return d.take(n - 1)
}

// segmentRecords splits a segment file's content into its records'
// payloads. It stops at a torn tail: a record cut short or failing its CRC
// with no valid record after it is a write the crash interrupted, whose
// caller was never told it succeeded. A bad record followed by a valid one
// is corruption, reported with its offset: the records after it were
// acknowledged, so they are neither dropped nor read past a hole.
func segmentRecords(data []byte) (recs []segmentRecord, err error) {
	if len(data) < journalHeaderSize {
		// Created, and the crash came before its header was written.
		if isPrefixOrZero(data, journalMagic) {
			return nil, nil
		}
		return nil, errors.New("not a countersign journal segment (short header)")
	}
	if string(data[:journalHeaderSize]) != journalMagic {
		if isPrefixOrZero(data[:journalHeaderSize], journalMagic) && allZero(data[journalHeaderSize:]) {
			return nil, nil
		}
		return nil, fmt.Errorf("not a countersign journal segment of a version this build reads (header %q)", data[:journalHeaderSize])
	}
	for off := journalHeaderSize; off < len(data); {
		p, n, err := readRecord(data[off:])
		if err != nil {
			if at := validRecordAfter(data, off+1); at >= 0 {
				return nil, fmt.Errorf("the record at offset %d is corrupt and a valid record follows at offset %d", off, at)
			}
			return recs, nil // torn tail
		}
		recs = append(recs, segmentRecord{off: off, payload: p})
		off += n
	}
	return recs, nil
}

// segmentRecord is a valid record of a segment and its offset in the file.
type segmentRecord struct {
	off     int
	payload []byte
}

// validRecordAfter is the offset of the first valid record at or after
// from, or -1.
func validRecordAfter(data []byte, from int) int {
	for at := from; at+recordHeaderSize < len(data); at++ {
		if _, _, err := readRecord(data[at:]); err == nil {
			return at
		}
	}
	return -1
}

// isPrefixOrZero reports whether b is a prefix of want, or zeros (a
// header whose write did not reach the disk).
func isPrefixOrZero(b []byte, want string) bool {
	return string(b) == want[:len(b)] || allZero(b)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
