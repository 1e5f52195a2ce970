package alloc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		want    Range
		wantErr string // substring; "" means success
	}{
		{in: "32768 60999", want: Range{32768, 60999}},
		{in: "32768\t60999\n", want: Range{32768, 60999}}, // as /proc prints it
		{in: "  1024 \t  65535  ", want: Range{1024, 65535}},
		{in: "1 65535", want: Range{1, 65535}},
		{in: "1 1", want: Range{1, 1}},
		{in: "60999 60999", want: Range{60999, 60999}},
		{in: "61000 32768", wantErr: "low 61000 is above high 32768"},
		{in: "0 100", wantErr: "low 0 is below 1"},
		{in: "0 0", wantErr: "low 0 is below 1"},
		{in: "1 65536", wantErr: "high: port 65536 is above 65535"},
		{in: "65536 65537", wantErr: "low: port 65536 is above 65535"},
		{in: "99999999999999999999 1", wantErr: "is above 65535"},
		{in: "", wantErr: "got 0 field(s)"},
		{in: "32768", wantErr: "got 1 field(s)"},
		{in: "32768-60999", wantErr: "got 1 field(s)"},
		{in: "32768,60999", wantErr: "got 1 field(s)"},
		{in: "1 2 3", wantErr: "got 3 field(s)"},
		{in: "abc def", wantErr: `"abc" is not a decimal port number`},
		{in: "-1 5", wantErr: `"-1" is not a decimal port number`},
		{in: "+1 5", wantErr: `"+1" is not a decimal port number`},
		{in: "1 0x10", wantErr: `"0x10" is not a decimal port number`},
		{in: "010 20", wantErr: "leading zero"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRange(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.Equal(t, Range{}, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRangeValidate(t *testing.T) {
	tests := []struct {
		r       Range
		wantErr string
	}{
		{Range{32768, 60999}, ""},
		{Range{1, 65535}, ""},
		{Range{65535, 65535}, ""},
		{Range{}, "low 0 is below 1"},
		{Range{0, 10}, "low 0 is below 1"},
		{Range{61000, 32768}, "low 61000 is above high 32768"},
	}
	for _, tt := range tests {
		t.Run(tt.r.String(), func(t *testing.T) {
			err := tt.r.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestRangeSizeContainsString(t *testing.T) {
	tests := []struct {
		r       Range
		size    int
		str     string
		in, out []int
	}{
		{Range{32768, 60999}, 28232, "32768-60999", []int{32768, 40000, 60999}, []int{32767, 61000, 0, -1}},
		{Range{1, 65535}, 65535, "1-65535", []int{1, 65535}, []int{0, 65536, -1}},
		{Range{49152, 65535}, 16384, "49152-65535", []int{49152, 65535}, []int{49151, 65536, 65536 + 49152}},
		{Range{7, 7}, 1, "7-7", []int{7}, []int{6, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			assert.Equal(t, tt.size, tt.r.Size())
			assert.Equal(t, tt.str, tt.r.String())
			for _, p := range tt.in {
				assert.True(t, tt.r.Contains(p), "Contains(%d)", p)
			}
			for _, p := range tt.out {
				assert.False(t, tt.r.Contains(p), "Contains(%d)", p)
			}
		})
	}
}
