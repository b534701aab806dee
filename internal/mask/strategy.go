package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// Redacted is what the redact strategy writes.
const Redacted = "****"

// Strategy turns a sensitive value into its masked form. null reports that
// the value must be sent as NULL instead.
type Strategy interface {
	Mask(v []byte) (out []byte, null bool)
	Name() string
}

// StrategySpec is a strategy's configuration, as in the YAML file.
type StrategySpec struct {
	Name      string // redact | partial | hash | email | null | fixed
	KeepFirst int
	KeepLast  int
	Fixed     string
	HashKey   []byte
}

// NewStrategy builds a strategy; an invalid spec is an error, never a
// strategy that lets values through.
func NewStrategy(s StrategySpec) (Strategy, error) {
	switch s.Name {
	case "redact", "":
		return redact{}, nil
	case "partial":
		if s.KeepFirst < 0 || s.KeepLast < 0 || s.KeepFirst+s.KeepLast == 0 {
			return nil, fmt.Errorf("partial needs keep_first or keep_last > 0")
		}
		return partial{first: s.KeepFirst, last: s.KeepLast}, nil
	case "hash":
		if len(s.HashKey) == 0 {
			return nil, fmt.Errorf("hash needs a key (hash_key_env)")
		}
		return hashed{key: s.HashKey}, nil
	case "email":
		return email{}, nil
	case "null":
		return null{}, nil
	case "fixed":
		return fixed{v: []byte(s.Fixed)}, nil
	}
	return nil, fmt.Errorf("unknown strategy %q (use redact, partial, hash, email, null or fixed)", s.Name)
}

type redact struct{}

func (redact) Mask([]byte) ([]byte, bool) { return []byte(Redacted), false }
func (redact) Name() string               { return "redact" }

// partial keeps the first and last characters and replaces every other
// letter or digit with '*', keeping punctuation so the shape stays
// (***-**-6789). A value too short to hide anything is redacted whole.
type partial struct{ first, last int }

func (p partial) Name() string { return "partial" }

func (p partial) Mask(v []byte) ([]byte, bool) {
	if ascii(v) {
		// One byte a character: no decoding (this runs once a value).
		if len(v) <= p.first+p.last {
			return []byte(Redacted), false
		}
		out := append([]byte(nil), v...)
		for i := p.first; i < len(out)-p.last; i++ {
			if isAlnum(rune(out[i])) {
				out[i] = '*'
			}
		}
		return out, false
	}
	runes := []rune(string(v))
	if !utf8.Valid(v) || len(runes) <= p.first+p.last {
		return []byte(Redacted), false
	}
	for i := p.first; i < len(runes)-p.last; i++ {
		if isAlnum(runes[i]) {
			runes[i] = '*'
		}
	}
	return []byte(string(runes)), false
}

func ascii(v []byte) bool {
	for _, b := range v {
		if b >= 0x80 {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return r >= 0x80 || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
}

// hashed is a keyed, deterministic pseudonym: equal inputs give equal
// outputs (joins and GROUP BY still work), and without the key a guess
// cannot be checked.
type hashed struct{ key []byte }

func (hashed) Name() string { return "hash" }

func (h hashed) Mask(v []byte) ([]byte, bool) {
	m := hmac.New(sha256.New, h.key)
	m.Write(v)
	sum := m.Sum(nil)
	out := make([]byte, 0, 2+32)
	out = append(out, "h:"...)
	return hex.AppendEncode(out, sum[:16]), false
}

// email masks the local part and keeps the domain; a value that is not an
// address is redacted whole.
type email struct{}

func (email) Name() string { return "email" }

func (email) Mask(v []byte) ([]byte, bool) {
	at := -1
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == '@' {
			at = i
			break
		}
	}
	if at <= 0 || at == len(v)-1 {
		return []byte(Redacted), false
	}
	out := make([]byte, 0, len(v)-at+4)
	out = append(out, Redacted...)
	return append(out, v[at:]...), false
}

type null struct{}

func (null) Mask([]byte) ([]byte, bool) { return nil, true }
func (null) Name() string               { return "null" }

type fixed struct{ v []byte }

func (f fixed) Mask([]byte) ([]byte, bool) { return append([]byte(nil), f.v...), false }
func (fixed) Name() string                 { return "fixed" }
