package htmlreport

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

//go:embed assets/report.html.tmpl assets/report.css assets/report.js assets/uPlot.iife.min.js assets/uPlot.min.css
var assets embed.FS

var page = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"join":   strings.Join,
	"f2":     func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
	"num":    func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) },
	"fx":     func(v float64, digits int) string { return strconv.FormatFloat(v, 'f', digits, 64) },
	"digits": objDigits,
	"opt": func(v *float64, digits int) string {
		if v == nil {
			return "–"
		}
		return strconv.FormatFloat(*v, 'f', digits, 64)
	},
	"pct": func(v *float64) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", math.Round(*v*100))
	},
	"dash": func(s string) string {
		if s == "" {
			return "–"
		}
		return s
	},
}).ParseFS(assets, "assets/report.html.tmpl"))

func asset(name string) string {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return string(b)
}

// DataJSON is the data as it is embedded in the page: indented JSON, with <, > and & escaped
// (\u003c …) so that it cannot end the script element that holds it.
func DataJSON(d *Data) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(true)
	enc.SetIndent("", " ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Write renders the page: the template with the tables, the data as JSON, uPlot and the
// script that draws the charts, all inline.
func Write(w io.Writer, d *Data) error {
	js, err := DataJSON(d)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	err = page.Execute(&b, map[string]any{
		"Data":     d,
		"JSON":     template.JS(js),
		"UPlotJS":  template.JS(asset("uPlot.iife.min.js")),
		"UPlotCSS": template.CSS(asset("uPlot.min.css")),
		"JS":       template.JS(asset("report.js")),
		"CSS":      template.CSS(asset("report.css")),
	})
	if err != nil {
		return err
	}
	_, err = w.Write(b.Bytes())
	return err
}

var embedded = regexp.MustCompile(`(?s)<script type="application/json" id="fuze-data">(.*?)</script>`)

// EmbeddedData returns the data embedded in a page Write wrote.
func EmbeddedData(html []byte) (*Data, []byte, error) {
	m := embedded.FindSubmatch(html)
	if m == nil {
		return nil, nil, fmt.Errorf("no <script id=\"fuze-data\"> in the page")
	}
	var d Data
	if err := json.Unmarshal(m[1], &d); err != nil {
		return nil, nil, fmt.Errorf("embedded data: %w", err)
	}
	return &d, m[1], nil
}
