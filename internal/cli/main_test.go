package cli

import (
	"context"
	"os"
	"testing"
)

// runAsFuze makes the test binary behave as the fuze command (Main on its arguments) when set
// in its environment, so tests can put it where the seed's shell entry points look for bin/fuze
// and run those scripts as a user would, without building fuze separately.
const runAsFuze = "FUZE_CLI_TEST_RUN_AS_FUZE"

func TestMain(m *testing.M) {
	if os.Getenv(runAsFuze) == "1" {
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
