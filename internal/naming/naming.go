// Package naming holds the names fuze gives models and rows in files and summaries: the one
// alias function, its baked-variant names, and the CSV variant labels. It imports nothing of
// fuze's, so results, reports and the Ollama store can use it without the engine.
package naming

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
)

var (
	separatorRun = regexp.MustCompile(`[/:]+`)
	// A token "it" (instruction-tuned) between dashes or at the end, not words that merely
	// start with "it" (the original's -it → -i also mangled "-italian").
	itToken = regexp.MustCompile(`-it(-|$)`)
	// Our own baked variants: <alias>-<gpu label>-ng<N>[:tag]. They are never benchmarked as
	// base models nor turned into env files.
	variantName = regexp.MustCompile(`-(nvidia-[a-z0-9-]+|cpu)-(ng[0-9]+|tuned-[0-9a-f]{8})(:|$)`)
)

// Alias is the one alias function: ALIAS_PREFIX + compacted tag + ALIAS_SUFFIX.
// Compaction: runs of '/' or ':' become '-', the token "-it" becomes "-i", "-fp16" "-f16",
// "-bf16" "-b16". A tag that already carries the prefix is not prefixed twice.
func Alias(tag, prefix, suffix string) string {
	a := separatorRun.ReplaceAllString(tag, "-")
	// Applied twice because matches overlap on the shared dash ("-it-it").
	a = itToken.ReplaceAllString(a, "-i$1")
	a = itToken.ReplaceAllString(a, "-i$1")
	a = strings.ReplaceAll(a, "-fp16", "-f16")
	a = strings.ReplaceAll(a, "-bf16", "-b16")
	if prefix != "" && strings.HasPrefix(a, prefix) {
		a = strings.TrimPrefix(a, prefix)
	}
	if suffix != "" && strings.HasSuffix(a, suffix) {
		a = strings.TrimSuffix(a, suffix)
	}
	return prefix + a + suffix
}

// IsVariant reports whether a model name is one of fuze's baked num_gpu variants.
func IsVariant(name string) bool { return variantName.MatchString(name) }

// VariantName is the tag baked for num_gpu ng of a model on a GPU label. A split endpoint's
// label ("nvidia-h200+nvidia-h200") has its '+' written '-': Ollama refuses '+' in a model name,
// and the variant pattern (IsVariant) still recognises the name.
func VariantName(alias, gpuLabel string, ng int) string {
	return alias + "-" + strings.ReplaceAll(gpuLabel, "+", "-") + "-ng" + strconv.Itoa(ng)
}

// TunedVariantName is the tag baked for a tuned set of PARAMETERs (num_gpu, num_batch,
// num_thread, num_ctx) of a model on a GPU label: a short hash of params names the set, so
// two sets never share a tag and the same set always gets the same one.
func TunedVariantName(alias, gpuLabel, params string) string {
	h := fnv.New32a()
	h.Write([]byte(params))
	return fmt.Sprintf("%s-%s-tuned-%08x", alias, gpuLabel, h.Sum32())
}

// Labels of the CSV variant_label column.
const (
	LabelBaseline  = "base-as-is"
	LabelOptimized = "optimized"
	LabelPublished = "published"
)
