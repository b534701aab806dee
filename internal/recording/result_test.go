package recording

import (
	"strings"
	"testing"
)

func TestResultValue(t *testing.T) {
	long := strings.Repeat("a", MaxResultValue-1) + "é" + "tail"
	tests := []struct {
		name   string
		v      []byte
		binary bool
		want   string
	}{
		{"text", []byte("ann@corp.example"), false, "ann@corp.example"},
		{"empty", []byte{}, false, ""},
		{"invalid utf-8 as hex", []byte{0xff, 0x00}, false, `\xff00`},
		{"binary format as hex", []byte("ab"), true, `\x6162`},
		{"long text cut before a split character", []byte(long), false,
			strings.Repeat("a", MaxResultValue-1) + " ... (1029 bytes)"},
		{"long binary cut", make([]byte, MaxResultValue+1), true,
			`\x` + strings.Repeat("00", MaxResultValue) + " ... (1025 bytes)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ResultValue(tc.v, tc.binary); got != tc.want {
				t.Errorf("ResultValue = %.80q..., want %.80q...", got, tc.want)
			}
		})
	}
}
