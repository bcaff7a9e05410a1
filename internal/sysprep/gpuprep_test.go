package sysprep

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// debianRepo answers apt-cache and dpkg-query like a Debian host with non-free enabled and
// none of the packages installed.
func debianRepo(f *Fake) {
	f.Programs["apt-cache"] = func(args []string) FakeResult {
		return FakeResult{Stdout: args[len(args)-1] + ":\n  Installed: (none)\n  Candidate: 1.0-1\n"}
	}
	f.Programs["dpkg-query"] = func(args []string) FakeResult {
		return FakeResult{Stderr: "dpkg-query: no packages found matching " + args[len(args)-1], Exit: 1}
	}
}

func ranApt(calls []string) []string {
	var apt []string
	for _, c := range calls {
		if strings.HasPrefix(c, "apt-get ") || strings.HasPrefix(c, "ubuntu-drivers ") {
			apt = append(apt, c)
		}
	}
	return apt
}

func TestGPUPrepareNoGPU(t *testing.T) {
	f := &Fake{Programs: map[string]func([]string) FakeResult{}}
	debianRepo(f)
	h := testHost(t, f)
	h.UID = 1000 // no root needed to find out there is nothing to do
	var out bytes.Buffer
	if err := GPUPrepare(context.Background(), GPUPrepareOptions{Host: h, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "No NVIDIA GPU detected — skipping driver/CUDA setup.") {
		t.Errorf("output:\n%s", out.String())
	}
	if apt := ranApt(f.Calls()); len(apt) > 0 {
		t.Errorf("ran %q", apt)
	}
}

var debianPlan = []string{
	"  apt-get update",
	"  apt-get install -y linux-headers-" + testKernel + " nvidia-driver firmware-misc-nonfree",
	"  apt-get install -y nvidia-cuda-toolkit",
}

func TestGPUPrepareDebianDryRun(t *testing.T) {
	f := &Fake{Programs: map[string]func([]string) FakeResult{}}
	debianRepo(f)
	h := testHost(t, f)
	h.UID = 1000 // a dry run needs no root
	addNVIDIAPCI(t, h)
	var out bytes.Buffer
	if err := GPUPrepare(context.Background(), GPUPrepareOptions{Host: h, DryRun: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Plan:\n"+strings.Join(debianPlan, "\n")+"\n") {
		t.Errorf("plan:\n%s", out.String())
	}
	if apt := ranApt(f.Calls()); len(apt) > 0 {
		t.Errorf("a dry run ran %q", apt)
	}
}

func TestGPUPrepareNotRoot(t *testing.T) {
	f := &Fake{Programs: map[string]func([]string) FakeResult{}}
	debianRepo(f)
	h := testHost(t, f)
	h.UID = 1000
	addNVIDIAPCI(t, h)
	err := GPUPrepare(context.Background(), GPUPrepareOptions{Host: h, Out: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "needs root: run `sudo fuze gpu-prepare`") || !strings.Contains(err.Error(), "--dry-run") {
		t.Fatalf("err = %v", err)
	}
	if apt := ranApt(f.Calls()); len(apt) > 0 {
		t.Errorf("ran %q without root", apt)
	}
}

// Real runs through the helper-process fake: the recorded commands are the plan, in order,
// with apt-get non-interactive.
func TestGPUPrepareDebianInstallsWithHelperProcess(t *testing.T) {
	record := filepath.Join(t.TempDir(), "calls")
	h := testHost(t, helperRunner(record, "nvidia-smi", "nvcc", "ubuntu-drivers"))
	addNVIDIAPCI(t, h)
	var out bytes.Buffer
	if err := GPUPrepare(context.Background(), GPUPrepareOptions{Host: h, Out: &out}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := ranApt(readRecord(t, record))
	want := []string{
		"apt-get update [DEBIAN_FRONTEND=noninteractive]",
		"apt-get install -y linux-headers-" + testKernel + " nvidia-driver firmware-misc-nonfree [DEBIAN_FRONTEND=noninteractive]",
		"apt-get install -y nvidia-cuda-toolkit [DEBIAN_FRONTEND=noninteractive]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ran\n%s\nwant\n%s\noutput:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
	if !strings.Contains(out.String(), "Reboot to load the new NVIDIA driver") {
		t.Errorf("no reboot note:\n%s", out.String())
	}
}

func TestGPUPrepareUbuntuAndOthers(t *testing.T) {
	f := &Fake{Programs: map[string]func([]string) FakeResult{}}
	debianRepo(f)
	h := testHost(t, f)
	addNVIDIAPCI(t, h)
	f.Programs["nvidia-smi"] = nvidiaSMI // driver present: only CUDA is missing
	writeFile(t, h.OSRelease, "ID=ubuntu\nID_LIKE=debian\nPRETTY_NAME=\"Ubuntu 24.04 LTS\"\n")
	var out bytes.Buffer
	if err := GPUPrepare(context.Background(), GPUPrepareOptions{Host: h, DryRun: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Plan:\n  apt-get update\n  apt-get install -y nvidia-cuda-toolkit\n") {
		t.Errorf("CUDA-only plan:\n%s", out.String())
	}
	delete(f.Programs, "nvidia-smi")
	out.Reset()
	GPUPrepare(context.Background(), GPUPrepareOptions{Host: h, DryRun: true, Out: &out})
	if !strings.Contains(out.String(), "  apt-get install -y ubuntu-drivers-common\n  ubuntu-drivers install\n") {
		t.Errorf("Ubuntu driver plan:\n%s", out.String())
	}

	writeFile(t, h.OSRelease, "ID=fedora\nPRETTY_NAME=\"Fedora Linux 40\"\n")
	out.Reset()
	err := GPUPrepare(context.Background(), GPUPrepareOptions{Host: h, Out: &out})
	if err == nil || !strings.Contains(out.String(), "Fedora Linux 40) is not Debian or Ubuntu") || !strings.Contains(out.String(), "Install the NVIDIA driver and the CUDA toolkit (nvcc)") {
		t.Errorf("err %v, output:\n%s", err, out.String())
	}
}

func TestGPUPrepareNothingToDo(t *testing.T) {
	f := &Fake{Programs: map[string]func([]string) FakeResult{"nvidia-smi": nvidiaSMI, "nvcc": out("release 12.8")}}
	h := testHost(t, f)
	h.UID = 1000
	var buf bytes.Buffer
	if err := GPUPrepare(context.Background(), GPUPrepareOptions{Host: h, Out: &buf}); err != nil || !strings.Contains(buf.String(), "Nothing to do") {
		t.Fatalf("%v\n%s", err, buf.String())
	}
}
