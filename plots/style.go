package plots

import (
	"math"
	"strconv"
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
// ("25000.00" becomes "25,000"), thousands separated by commas unless
// ungrouped is set (for port numbers) and, when integer is set, no labels
// at fractional values (for counts). With dense set, an axis that would
// have fewer than 5 labels gets its minor ticks labelled too, when that
// makes at most 10 (0, 20, 40 becomes 0, 10, 20, 30, 40).
type numberTicks struct {
	integer   bool
	ungrouped bool
	dense     bool
}

// Ticks implements plot.Ticker.
func (t numberTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	if t.dense {
		densify(ticks)
	}
	for i, tk := range ticks {
		switch {
		case tk.Label == "":
		case t.integer && tk.Value != math.Trunc(tk.Value):
			ticks[i].Label = ""
		case t.ungrouped:
			ticks[i].Label = trimZeros(tk.Label)
		default:
			ticks[i].Label = groupDigits(trimZeros(tk.Label))
		}
	}
	return ticks
}

// densify labels the minor ticks of ticks when fewer than 5 are labelled
// and all would make at most 10, with one more decimal than the labelled
// ones (trimmed later).
func densify(ticks []plot.Tick) {
	labelled, prec := 0, 0
	for _, tk := range ticks {
		if tk.Label != "" {
			labelled++
			if _, frac, ok := strings.Cut(tk.Label, "."); ok {
				prec = max(prec, len(frac))
			}
		}
	}
	if labelled >= 5 || len(ticks) > 10 {
		return
	}
	for i, tk := range ticks {
		if tk.Label == "" {
			ticks[i].Label = strconv.FormatFloat(tk.Value, 'f', prec+1, 64)
		}
	}
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
