package cli

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/htmlreport"
	"github.com/fuze-ai/fuze/internal/runset"
)

type htmlReportFlags struct {
	out   string
	title string
	meta  []string
	same  []string
}

func newHTMLReportCommand(s streams) *cobra.Command {
	var f htmlReportFlags
	cmd := &cobra.Command{
		Use:   "report [-o report.html] [--title T] [--meta KEY=VALUE]... [--same-model NAME=GROUP]... RUN.csv|RUN.jsonl|AGGREGATE.csv|serving_*.csv|DIR...",
		Short: "Write one self-contained HTML report (tables, charts, provenance) of runs, aggregates and serving results",
		Long: `report reads run CSVs (with the JSONL beside each), run JSONLs, aggregates (benchmarks.csv
and its .repeats.jsonl), serving CSVs (serving_<stack>_<TS>.csv, or any CSV with the serving
header) and folders of them, and writes
one HTML file that opens offline: the chart library (uPlot) and the data are inside it.

Per model: the cross-stack table (client decode tok/s with the repeats' range and count, TTFT,
ITL, the server timer's ratio, J/token when the JSONL has joules_per_token, roofline share,
each stack's best configuration and its comparison with the fastest stack, provenance); charts
of the rate against the layers on the GPU per GPU, inter-token latency percentiles, energy per
token, and, from serving CSVs, throughput against p99 latency per concurrency level with the
Pareto front and TTFT/ITL percentiles against concurrency. Then the provenance: GPUs (driver and
versions from a machine.txt beside the inputs, as scripts/gpu-run.sh writes it), stacks, fuze,
workload settings, dates, and what --meta adds.

Stacks name one model differently (Ollama's fuze-llama-8b:latest, llama.cpp's llama-8b): names
are grouped without ":latest", and a name ending in "-" + another is grouped with it when both
read the same weight bytes per token; --same-model NAME=GROUP groups by hand.`,
		Args:          cobra.MinimumNArgs(1),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(_ *cobra.Command, args []string) error {
			return runHTMLReport(s, f, args)
		},
	}
	cmd.Flags().StringVarP(&f.out, "output", "o", "report.html", "the HTML file to write ('-': standard output)")
	cmd.Flags().StringVar(&f.title, "title", "", "the page's title (default \"FuZe benchmark report\")")
	cmd.Flags().StringArrayVar(&f.meta, "meta", nil, "KEY=VALUE added to the provenance block (e.g. a stack's version the runs do not record); repeatable")
	cmd.Flags().StringArrayVar(&f.same, "same-model", nil, "NAME=GROUP: show model NAME in the section GROUP; repeatable")
	return cmd
}

func runHTMLReport(s streams, f htmlReportFlags, args []string) error {
	opts := htmlreport.Options{Title: f.title, Generator: "fuze " + Version, Aliases: map[string]string{}}
	for _, m := range f.meta {
		k, v, ok := strings.Cut(m, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return usageErrorf("--meta %q: want KEY=VALUE", m)
		}
		opts.Meta = append(opts.Meta, htmlreport.KV{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
	}
	for _, m := range f.same {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" || v == "" {
			return usageErrorf("--same-model %q: want NAME=GROUP", m)
		}
		opts.Aliases[k] = v
	}
	set, warnings, err := runset.Load(args)
	printWarnings(s, warnings)
	if err != nil {
		return usageError{err}
	}
	data, warnings := htmlreport.Build(set, opts)
	printWarnings(s, warnings)
	var b bytes.Buffer
	if err := htmlreport.Write(&b, data); err != nil {
		return err
	}
	if f.out == "-" {
		_, err := s.out.Write(b.Bytes())
		return err
	}
	if err := os.WriteFile(f.out, b.Bytes(), 0o644); err != nil {
		return err
	}
	charts := 0
	for _, m := range data.Models {
		charts += len(m.Charts)
	}
	fmt.Fprintf(s.out, "%s: %d models, %d charts, %d KiB (uPlot and the data inside; opens offline)\n",
		f.out, len(data.Models), charts, (b.Len()+1023)/1024)
	return nil
}
