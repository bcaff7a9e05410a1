package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
)

// knobJSON is one element of `fuze knobs --json`.
type knobJSON struct {
	Name          string            `json:"name"`
	Default       string            `json:"default"`
	Doc           string            `json:"doc"`
	Stacks        []string          `json:"stacks"`
	Kind          string            `json:"kind"`
	StackDefaults map[string]string `json:"stack_defaults,omitempty"`
}

func newKnobsCommand(s streams) *cobra.Command {
	var (
		asJSON bool
		stack  string
	)
	cmd := &cobra.Command{
		Use:   "knobs",
		Short: "List every environment knob: name, default, stacks it affects, meaning",
		Long: `knobs lists the environment variables ("knobs") fuze reads, from the process
environment or from env files (@file.env). Precedence: built-in defaults <
process environment < env files, later files over earlier ones. An empty value
counts as unset and gives the default.

Names with <alias> stand for a family (VLLM_MODEL_llama4_16x17b, …).
A default written "4096, llama.cpp: 1024" differs per stack.

--stack S shows the knobs that affect S (including those of every stack):
  ` + strings.Join(knobs.Stacks(), ", ") + `
Stack names are case-insensitive; llamacpp and llama-cpp mean llama.cpp.

--json prints an array of {name, default, doc, stacks, kind[, stack_defaults]};
kinds: ` + joinKinds() + `.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runKnobs(s, asJSON, stack)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().StringVar(&stack, "stack", "", "only knobs affecting this stack (`S`: "+strings.Join(knobs.Stacks(), ", ")+")")
	return cmd
}

func joinKinds() string {
	var ks []string
	for _, k := range knobs.Kinds() {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ", ")
}

func runKnobs(s streams, asJSON bool, stack string) error {
	list := knobs.All()
	if stack != "" {
		st, ok := knobs.ParseStack(stack)
		if !ok {
			return usageErrorf("unknown --stack %q (want one of: %s)", stack, strings.Join(knobs.Stacks(), ", "))
		}
		list = knobs.ForStack(st)
	}
	if asJSON {
		out := make([]knobJSON, 0, len(list))
		for _, k := range list {
			out = append(out, knobJSON{Name: k.Name, Default: k.Default, Doc: k.Doc, Stacks: k.Stacks,
				Kind: string(k.Kind), StackDefaults: k.StackDefaults})
		}
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDEFAULT\tSTACKS\tMEANING")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, displayDefault(k), strings.Join(k.Stacks, ","), k.Doc)
	}
	return tw.Flush()
}

// displayDefault renders a knob's default for the table: "-" when empty,
// double-quoted when it holds spaces, per-stack defaults appended.
func displayDefault(k knobs.Knob) string {
	show := func(v string) string {
		switch {
		case v == "":
			return "-"
		case strings.ContainsAny(v, " \t"):
			return fmt.Sprintf("%q", v)
		}
		return v
	}
	d := show(k.Default)
	stacks := make([]string, 0, len(k.StackDefaults))
	for st := range k.StackDefaults {
		stacks = append(stacks, st)
	}
	sort.Strings(stacks)
	for _, st := range stacks {
		d += ", " + st + ": " + show(k.StackDefaults[st])
	}
	return d
}
