package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10m", 10 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"400d", 400 * day, true},
		{"1d12h", day + 12*time.Hour, true},
		{"0d", 0, true},
		{"0", 0, true},
		{"-5m", -5 * time.Minute, true}, // parsed; validation refuses it
		{"600", 0, false},
		{"1.5d", 0, false},
		{"d", 0, false},
		{"1d-1h", 0, false},
		{"1d+1h", 0, false},
		{"1w", 0, false},
		{"", 0, false},
		{"106751d", 106751 * day, true},
		{"106752d", 0, false},
		{"106751d23h59m59s", 0, false},
		{"99999999999999999999d", 0, false},
	}
	for _, tc := range tests {
		got, err := parseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	keys := []string{"password_env", "username", "address", "database"}
	tests := []struct{ in, want string }{
		{"pasword_env", "password_env"},
		{"Password_Env", "password_env"},
		{"adress", "address"},
		{"user", ""},
		{"colour", ""},
	}
	for _, tc := range tests {
		if got := suggest(tc.in, keys); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
