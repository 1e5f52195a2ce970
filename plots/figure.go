// Package plots draws charts of a run's result (sim.Result) with
// gonum/plot. Output is deterministic: the same Result gives the same
// bytes.
package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// pngDPI is the resolution of PNG output: a 10 × 7 inch figure is
// 1200 × 840 pixels.
const pngDPI = 120

// Layout of a Figure, in points.
const (
	margin     = vg.Length(10) // around the figure
	titleGap   = vg.Length(8)  // below the title
	legendGap  = vg.Length(6)  // below the legend
	panelGap   = vg.Length(14) // between the panels
	thumbWidth = vg.Length(28) // legend sample
	entryGap   = vg.Length(22) // between legend entries in a row
	topShare   = 2.0 / 3       // of the height left for the panels
)

// Figure is a titled chart of two plots stacked vertically that share an
// x axis: Top takes about two thirds of the height and Bottom the rest,
// and their data areas are aligned left and right. The figure's Title is
// centred at the top (broken before its " — " when it is too wide for one
// line); its Legend runs in rows between the title and Top, starting at
// the left edge of the data areas, so it never hides data. Top must be
// set; when Bottom is nil, Top takes the whole height.
type Figure struct {
	Title       string
	Legend      []LegendEntry
	Top, Bottom *plot.Plot
	// Width and Height are the size of the whole figure.
	Width, Height vg.Length
}

// newFigure returns a 10 × 7 inch Figure with the given title, a Top plot
// and, when bottom is set, a Bottom plot, both with the package's fonts.
func newFigure(title string, bottom bool) *Figure {
	f := &Figure{Title: title, Top: plot.New(), Width: 10 * vg.Inch, Height: 7 * vg.Inch}
	setFonts(f.Top)
	if bottom {
		f.Bottom = plot.New()
		setFonts(f.Bottom)
	}
	return f
}

// LegendEntry is one item of a Figure's legend: a name after a sample of
// the style of the data it names (each Thumbs drawn over the previous).
// An entry without Thumbs is its name alone, e.g. "+3 more".
type LegendEntry struct {
	Name   string
	Thumbs []plot.Thumbnailer
}

// Text styles of the figure's own title and legend.
var (
	titleStyle = text.Style{
		Color: color.Black, Font: sans(14), XAlign: draw.XCenter, YAlign: draw.YTop,
		Handler: plot.DefaultTextHandler,
	}
	legendStyle = text.Style{
		Color: color.Black, Font: sans(11), XAlign: draw.XLeft, YAlign: draw.YBottom,
		Handler: plot.DefaultTextHandler,
	}
)

// Draw draws the figure onto c, which should be Width × Height.
func (f *Figure) Draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	c = draw.Crop(c, margin, -margin, margin, -margin)

	if f.Title != "" {
		t := fitTitle(f.Title, c.Max.X-c.Min.X)
		c.FillText(titleStyle, vg.Point{X: c.Center().X, Y: c.Max.Y}, t)
		c.Max.Y -= titleStyle.Height(t) + titleGap
	}
	// The data areas' left and right edges do not depend on the height,
	// so a first split tells where the legend goes.
	top, _ := f.split(c)
	dt := f.Top.DataCanvas(top)
	if h := f.drawLegend(c, dt.Min.X, dt.Max.X); h > 0 {
		c.Max.Y -= h + legendGap
	}
	top, bottom := f.split(c)
	f.Top.Draw(top)
	if f.Bottom != nil {
		f.Bottom.Draw(bottom)
	}
}

// fitTitle returns title on one line when it fits in width, else with its
// first " — " (which separates what is shown from the run) replaced by a
// line break.
func fitTitle(title string, width vg.Length) string {
	if titleStyle.Width(title) <= width {
		return title
	}
	if before, after, ok := strings.Cut(title, " — "); ok {
		return before + "\n" + after
	}
	return title
}

// split divides c between Top and Bottom and crops each so that their
// data areas have the same left and right edges. Without Bottom, top is c.
func (f *Figure) split(c draw.Canvas) (top, bottom draw.Canvas) {
	if f.Bottom == nil {
		return c, draw.Canvas{}
	}
	panels := c.Max.Y - c.Min.Y - panelGap
	bottomH := panels * (1 - topShare)
	top = draw.Crop(c, 0, 0, bottomH+panelGap, 0)
	bottom = draw.Crop(c, 0, 0, 0, -(panels - bottomH + panelGap))

	dt, db := f.Top.DataCanvas(top), f.Bottom.DataCanvas(bottom)
	lt, lb := dt.Min.X-top.Min.X, db.Min.X-bottom.Min.X
	rt, rb := top.Max.X-dt.Max.X, bottom.Max.X-db.Max.X
	left, right := max(lt, lb), max(rt, rb)
	top = draw.Crop(top, left-lt, -(right - rt), 0, 0)
	bottom = draw.Crop(bottom, left-lb, -(right - rb), 0, 0)
	return top, bottom
}

// drawLegend draws f.Legend in rows from the top of c, between x0 and x1,
// wrapping entries that do not fit, and returns the height it used.
func (f *Figure) drawLegend(c draw.Canvas, x0, x1 vg.Length) vg.Length {
	if len(f.Legend) == 0 {
		return 0
	}
	ext := legendStyle.FontExtents()
	size := legendStyle.Font.Size
	rowH := ext.Height
	space := legendStyle.Width(" ")
	// Centre samples and capitals (0.73 em tall in Liberation Sans) on
	// the row's centre line; with YBottom, text's baseline is at
	// point − ascent + size.
	half := 0.4 * size
	toBaseline := -0.365*size + ext.Ascent - size
	x, y := x0, c.Max.Y-rowH/2 // centre line of the current row
	for i, e := range f.Legend {
		thumbW := thumbWidth + space
		if len(e.Thumbs) == 0 {
			thumbW = 0
		}
		w := thumbW + legendStyle.Width(e.Name)
		if i > 0 && x+w > x1 {
			x, y = x0, y-rowH
		}
		thumb := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: y - half},
			Max: vg.Point{X: x + thumbWidth, Y: y + half},
		}}
		for _, t := range e.Thumbs {
			t.Thumbnail(&thumb)
		}
		c.FillText(legendStyle, vg.Point{X: x + thumbW, Y: y + toBaseline}, e.Name)
		x += w + entryGap
	}
	return c.Max.Y - (y - rowH/2)
}

// WriterTo renders the figure in format, "png" (at 120 dpi) or "svg" (text
// in Liberation Sans, falling back to Arial, Helvetica or sans-serif).
func (f *Figure) WriterTo(format string) (io.WriterTo, error) {
	switch format {
	case "png":
		c := vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(pngDPI))
		f.Draw(draw.New(c))
		return vgimg.PngCanvas{Canvas: c}, nil
	case "svg":
		c := vgsvg.New(f.Width, f.Height)
		f.Draw(draw.New(c))
		var buf bytes.Buffer
		if _, err := c.WriteTo(&buf); err != nil {
			return nil, err
		}
		// Name metric-compatible fallbacks (Arial has Liberation Sans's
		// widths), so viewers without Liberation keep the layout.
		return bytes.NewBuffer(bytes.ReplaceAll(buf.Bytes(),
			[]byte("font-family:Liberation Sans;"),
			[]byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"))), nil
	}
	return nil, fmt.Errorf("plots: unsupported format %q (want png or svg)", format)
}

// writeFigure writes f to dir/name.png and dir/name.svg, creating dir if
// needed. Each file is rendered in memory first, so that a failure leaves
// no truncated file behind.
func writeFigure(f *Figure, dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, format := range []string{"png", "svg"} {
		wt, err := f.WriterTo(format)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if _, err := wt.WriteTo(&buf); err != nil {
			return fmt.Errorf("plots: rendering %s.%s: %w", name, format, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"."+format), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
