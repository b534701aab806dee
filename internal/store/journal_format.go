package store

import (
	"crypto/rand"
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
//	header  = "CSJRNL" u16le(version = 2) nonce           24 bytes
//	record  = u32le(len) u32le(sum) payload               one AppendEvents call
//	sum     = CRC-32C(nonce || payload)
//	payload = uvarint(n) event{n}
//	event   = str(writer) varint(seq) varint(time) str(type) str(session)
//	          str(resource) str(actor) bytes(data) bytes(prev_hash) bytes(hash)
//	str     = uvarint(len) byte{len}
//	bytes   = uvarint(len+1) byte{len}, or uvarint(0) for nil
//
// nonce is 16 bytes from crypto/rand, fresh for each segment. Version 1
// (a journal an older build left) has an 8-byte header without a nonce
// and sum = CRC-32C(payload); replay still reads it.
//
// The nonce is there because a payload holds text users send (statements
// end up in events' data), and replay tells a torn tail from damage in the
// middle by whether a valid record follows a bad one (segmentRecords): with
// sum = CRC-32C(payload), a user could embed a whole valid record in their
// own text, and a crash tearing the record that holds it would then keep
// the store from opening until an operator repaired the file. With the
// nonce in the sum, a frame is valid only for the segment it was written
// for: a forger who cannot read the segment file must guess the sum. That
// suffices because the sum is an affine function of the 32-bit CRC state
// after the nonce (crc32.Update(frameKey, payload)): the key is uniform
// and secret, and for a given payload each key gives a different sum, so
// each embedded guess passes with probability 2^-32, no better than a
// random frame (a record stuffed with k guesses: k*2^-32, and only if a
// crash then tears that very record after them). A frame that does pass
// merely makes replay refuse to open the store (the version-1 behaviour):
// it can neither hide nor add an acknowledged record. A longer nonce would
// not lower those odds, only a longer sum would. The nonce is never
// logged: the file (0600, in a 0700 directory) is the only place it is.
//
// time is unix nanoseconds as SQLite stores it (toNanos: 0 is the zero
// time), so an event read back from the journal is the event SQLite would
// have given back, byte for byte and to the nanosecond. nil and empty
// byte slices stay apart, so the insert binds exactly what it bound when
// SQLite was the durable medium.
const (
	// journalMagic starts every segment this build writes (version 2).
	journalMagic   = "CSJRNL\x02\x00"
	journalMagicV1 = "CSJRNL\x01\x00"
	magicSize      = len(journalMagic)
	nonceSize      = 16
	// journalHeaderSize is the size of the header this build writes; a
	// version-1 header is magicSize bytes.
	journalHeaderSize = magicSize + nonceSize
	recordHeaderSize  = 8
	// maxRecordPayload bounds a record's length field: a reader never
	// believes a longer one (a corrupt length would otherwise make it
	// allocate or skip gigabytes). A group commit is at most MaxBatch
	// events (1024 by default) of a few KiB each.
	maxRecordPayload = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameKey is the CRC-32C of a segment's nonce: a record's sum is
// crc32.Update(key, payload), which is CRC-32C(nonce || payload) without
// hashing the nonce again for every record. A version-1 segment's key is
// 0, which makes the sum CRC-32C(payload).
type frameKey uint32

func keyOf(nonce []byte) frameKey { return frameKey(crc32.Checksum(nonce, castagnoli)) }

// appendHeader appends a new segment's header, with a fresh nonce, and
// returns the key its records are summed with.
func appendHeader(dst []byte) ([]byte, frameKey) {
	start := len(dst)
	dst = append(dst, journalMagic...)
	dst = append(dst, make([]byte, nonceSize)...)
	nonce := dst[start+magicSize:]
	_, _ = rand.Read(nonce) // never fails (crypto/rand's contract since Go 1.24)
	return dst, keyOf(nonce)
}

// appendRecord appends one record holding events to dst, its sum left
// zero: the sum depends on the segment the record goes to, which is
// chosen once the record's length is known (sumRecord).
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
	return dst, nil
}

// sumRecord sets the sum of rec, one record appendRecord framed, for a
// segment whose records are summed with key.
func sumRecord(rec []byte, key frameKey) {
	binary.LittleEndian.PutUint32(rec[4:], crc32.Update(uint32(key), castagnoli, rec[recordHeaderSize:]))
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

// readRecord reads the record at the start of b, in a segment whose
// records are summed with key: its payload (a sub-slice of b) and the
// record's whole size. errTorn if there is no valid record.
func readRecord(b []byte, key frameKey) (payload []byte, size int, err error) {
	if len(b) < recordHeaderSize {
		return nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxRecordPayload || uint64(n) > uint64(len(b)-recordHeaderSize) {
		return nil, 0, errTorn
	}
	payload = b[recordHeaderSize : recordHeaderSize+int(n)]
	if crc32.Update(uint32(key), castagnoli, payload) != binary.LittleEndian.Uint32(b[4:]) {
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
// acknowledged, so they are neither dropped nor read past a hole. (Only a
// record summed with the segment's key counts as valid: journal_format's
// top comment says why a user's text cannot pass for one.)
func segmentRecords(data []byte) (recs []segmentRecord, err error) {
	start, key, err := readHeader(data)
	if err != nil {
		return nil, err
	}
	for off := start; off < len(data); {
		p, n, err := readRecord(data[off:], key)
		if err != nil {
			if at := validRecordAfter(data, off+1, key); at >= 0 {
				return nil, fmt.Errorf("the record at offset %d is corrupt and a valid record follows at offset %d", off, at)
			}
			return recs, nil // torn tail
		}
		recs = append(recs, segmentRecord{off: off, payload: p})
		off += n
	}
	return recs, nil
}

// readHeader reads a segment's header: where its records start and the
// key they are summed with. A segment whose header never reached the disk
// whole (the crash came while it was being created) holds no record: its
// records start at its end.
func readHeader(data []byte) (start int, key frameKey, err error) {
	magic := data[:min(len(data), magicSize)]
	switch {
	case string(magic) == journalMagicV1:
		return magicSize, 0, nil
	case string(magic) == journalMagic && len(data) >= journalHeaderSize:
		return journalHeaderSize, keyOf(data[magicSize:journalHeaderSize]), nil
	case string(magic) == journalMagic:
		return len(data), 0, nil // the nonce cut short
	case (isPrefixOrZero(magic, journalMagic) || isPrefixOrZero(magic, journalMagicV1)) && allZero(data[len(magic):]):
		return len(data), 0, nil
	case len(data) < magicSize:
		return 0, 0, errors.New("not a countersign journal segment (short header)")
	}
	return 0, 0, fmt.Errorf("not a countersign journal segment of a version this build reads (header %q)", magic)
}

// segmentRecord is a valid record of a segment and its offset in the file.
type segmentRecord struct {
	off     int
	payload []byte
}

// validRecordAfter is the offset of the first record at or after from
// that is valid in a segment whose records are summed with key, or -1.
func validRecordAfter(data []byte, from int, key frameKey) int {
	for at := from; at+recordHeaderSize < len(data); at++ {
		if _, _, err := readRecord(data[at:], key); err == nil {
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
