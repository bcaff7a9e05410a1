// Package report renders what people read after a benchmark: the summaries of the aggregate
// (Top N, best per key, global best per model) and the analysis of the run CSVs of one run
// (baseline vs optimized per endpoint and model, best across endpoints, sample details and
// outcomes). Every report is a value that renders as aligned text tables or as JSON with the
// same numbers.
//
// Conventions shared by every table:
//   - one header line whose columns line up with every row: widths come from the data, text
//     columns are left-aligned, number columns right-aligned, two spaces between columns;
//   - an empty cell is "-"; an energy, power or memory figure that was not measured is "n/a"
//     (never 0);
//   - model names go through naming.Alias (ALIAS_PREFIX + compacted tag + ALIAS_SUFFIX);
//   - gains are optimized ÷ baseline of the same endpoint, with the significance rule's verdict
//     (results.Gain): "1.23x (p=0.008)" when the U test over their repeats says so, "~ (p=0.310)"
//     when it does not, "1.02x (n=1)" for rows without repeats (no difference is claimed); "-"
//     without a working baseline;
//   - times are "YYYY-mm-dd HH:MM:SS", from compact run timestamps and ISO ones alike;
//   - rows are in a deterministic order.
package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fuze-ai/fuze/internal/results"
)

// table is one titled, aligned table.
type table struct {
	title  string
	header []string
	right  []bool // right-aligned (numeric) columns
	rows   [][]string
}

const (
	indent = "  "
	gap    = "  "
)

// lines renders the table without its title: the header, then one line per row, or
// "(none)" when there are no rows. Trailing spaces are trimmed.
func (t table) lines() []string {
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if n := utf8.RuneCountInString(c); i < len(widths) && n > widths[i] {
				widths[i] = n
			}
		}
	}
	format := func(cells []string) string {
		var b strings.Builder
		b.WriteString(indent)
		for i, w := range widths {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			if i > 0 {
				b.WriteString(gap)
			}
			pad := strings.Repeat(" ", w-utf8.RuneCountInString(c))
			if i < len(t.right) && t.right[i] {
				b.WriteString(pad + c)
			} else {
				b.WriteString(c + pad)
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	out := []string{format(t.header)}
	for _, r := range t.rows {
		out = append(out, format(r))
	}
	if len(t.rows) == 0 {
		out = append(out, indent+"(none)")
	}
	return out
}

// write prints a blank line, the title and the table.
func (t table) write(w io.Writer) error {
	var b strings.Builder
	b.WriteString("\n" + t.title + "\n")
	for _, l := range t.lines() {
		b.WriteString(l + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// HumanTimeLayout is how every report shows a time.
const HumanTimeLayout = "2006-01-02 15:04:05"

// HumanTime renders a timestamp as YYYY-mm-dd HH:MM:SS: a compact run timestamp
// (YYYYmmdd_HHMMSS, as written) or an ISO 8601 / RFC 3339 one (the wall clock in its own
// offset). Anything else is returned unchanged, "-" when empty: never sliced blindly.
func HumanTime(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "-"
	}
	if t, err := time.Parse(results.RunTSLayout, s); err == nil {
		return t.Format(HumanTimeLayout)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05-0700", "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format(HumanTimeLayout)
		}
	}
	return s
}

// humanTS renders a parsed row time (zero: "-").
func humanTS(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(HumanTimeLayout)
}

// ratio is optimized ÷ baseline rounded to the two decimals shown; nil without both.
func ratio(opt, base float64) *float64 {
	if base <= 0 || opt <= 0 {
		return nil
	}
	r := math.Round(opt/base*100) / 100
	return &r
}

func ratioCell(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx", *r)
}

// gainCell is the cell of a gain over the server's default on the same endpoint: the
// significance rule's (results.Gain: "1.91x (p=0.008)", "~ (p=0.310)", "1.02x (n=1)"), or the
// plain ratio when nothing was compared (the default against itself); "-" without either.
func gainCell(g *results.Gain, r *float64) string {
	if g != nil {
		return g.String()
	}
	return ratioCell(r)
}

func tpsCell(v float64) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}

// round2 keeps the two decimals the CSVs and the text show.
func round2(v float64) float64 { return math.Round(v*100) / 100 }
