// Package awstest runs tests against moto_server, a local AWS emulator. The
// first test that asks for it starts one on a free 127.0.0.1 port; Main
// stops it when the package's tests end. Config's clients refuse what AWS
// refuses and moto would accept (StrictTransport), so that tests see the
// failures production would.
//
// Without moto_server the tests that need it are skipped, except under
// CI=true, where a missing emulator fails them: CI never passes by skipping.
package awstest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
)

var server struct {
	once sync.Once
	srv  *moto.Server
	err  error
}

// Main runs the package's tests and then stops the emulator if one was
// started. Call it from TestMain: os.Exit(awstest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	server.srv.Stop()
	return code
}

// Endpoint returns the emulator's base URL, starting it if needed.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	server.once.Do(func() { server.srv, server.err = moto.Start(0, nil) })
	if server.err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("AWS emulator unavailable under CI: %v", server.err)
		}
		tb.Skipf("AWS emulator unavailable (install with: %s): %v", moto.InstallHint, server.err)
	}
	return server.srv.Endpoint
}

// Config returns an AWS config for the emulator (see moto.Config) whose
// transport refuses, as AWS does, what moto would accept (see
// StrictTransport).
func Config(tb testing.TB) aws.Config {
	tb.Helper()
	cfg, err := moto.Config(context.Background(), Endpoint(tb))
	if err != nil {
		tb.Fatalf("aws config: %v", err)
	}
	client, ok := cfg.HTTPClient.(*http.Client)
	if !ok {
		tb.Fatalf("aws config: HTTP client %T has no transport to wrap", cfg.HTTPClient)
	}
	cfg.HTTPClient = &http.Client{Transport: StrictTransport(client.Transport)}
	return cfg
}

var names atomic.Int64

// Name returns a name for an emulator resource (a queue, table or secret)
// made of base, the test's name and a number unique in this process: the
// emulator lives as long as the package's tests, and `go test -count=N` must
// not meet the resources of an earlier run.
func Name(tb testing.TB, base string) string {
	test := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '-'
	}, tb.Name())
	return fmt.Sprintf("%s-%.40s-%d", base, test, names.Add(1))
}

// SetEnv points the AWS SDK's default configuration at the emulator through
// environment variables, as a user would for a Lambda run locally.
func SetEnv(t *testing.T) {
	t.Helper()
	for k, v := range moto.Env(Endpoint(t)) {
		t.Setenv(k, v)
	}
}
