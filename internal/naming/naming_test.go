package naming

import "testing"

func TestSplitEndpointVariantName(t *testing.T) {
	got := VariantName("LLM-FuZe-m", "nvidia-h200+nvidia-h200", 33)
	if got != "LLM-FuZe-m-nvidia-h200-nvidia-h200-ng33" || !IsVariant(got+":latest") {
		t.Fatalf("%s (variant %v)", got, IsVariant(got))
	}
}
