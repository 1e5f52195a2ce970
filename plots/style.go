package plots

import (
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
)

// sans returns Liberation Sans (registered by gonum/plot) at size points.
func sans(size float64) font.Font {
	return font.Font{Typeface: "Liberation", Variant: "Sans", Size: vg.Points(size)}
}

// setFonts sets the axis labels and tick labels of p (a panel: the
// Figure draws the only title) to Liberation Sans at readable sizes. It
// leaves plot.DefaultFont alone.
func setFonts(p *plot.Plot) {
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(12)
		a.Tick.Label.Font = sans(11)
	}
}

// numberTicks are plot.DefaultTicks with plain labels: no trailing zeros
// ("25000.00" becomes "25,000"), thousands separated by commas and, when
// integer is set, no labels at fractional values (for counts).
type numberTicks struct {
	integer bool
}

// Ticks implements plot.Ticker.
func (t numberTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i, tk := range ticks {
		switch {
		case tk.Label == "":
		case t.integer && tk.Value != math.Trunc(tk.Value):
			ticks[i].Label = ""
		default:
			ticks[i].Label = groupDigits(trimZeros(tk.Label))
		}
	}
	return ticks
}

// trimZeros drops trailing zeros after a decimal point, and the point if
// nothing follows it: "25000.00" → "25000", "0.50" → "0.5". Labels in
// exponent form are left alone.
func trimZeros(s string) string {
	if !strings.Contains(s, ".") || strings.ContainsAny(s, "eE") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// groupDigits puts commas between groups of three digits in the integer
// part of a decimal number: "-28232.5" → "-28,232.5".
func groupDigits(s string) string {
	if strings.ContainsAny(s, "eE") {
		return s
	}
	sign, rest := "", s
	if strings.HasPrefix(rest, "-") {
		sign, rest = "-", rest[1:]
	}
	whole, frac, hasFrac := strings.Cut(rest, ".")
	var b strings.Builder
	b.WriteString(sign)
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return b.String()
}
