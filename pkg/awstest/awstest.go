// Package awstest runs tests against moto_server, a local AWS emulator. The
// first test that asks for it starts one on a free 127.0.0.1 port; Main
// stops it when the package's tests end.
//
// Without moto_server the tests that need it are skipped, except under
// CI=true, where a missing emulator fails them: CI never passes by skipping.
package awstest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/moto"
)

// Region and credentials the emulator is used with.
const (
	Region    = "us-east-1"
	AccessKey = "testing"
	SecretKey = "testing"
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

// Config returns an AWS config for the emulator: its endpoint, static test
// credentials and a fixed region, set only through configuration.
func Config(tb testing.TB) aws.Config {
	tb.Helper()
	endpoint := Endpoint(tb)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(Region),
		config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")),
	)
	if err != nil {
		tb.Fatalf("aws config: %v", err)
	}
	// Set after loading: a custom client cannot take AWS_CA_BUNDLE, and the
	// emulator speaks plain HTTP anyway.
	cfg.HTTPClient = &http.Client{Transport: AtomicDynamoDB(http.DefaultTransport)}
	return cfg
}

// SetEnv points the AWS SDK's default configuration at the emulator through
// environment variables, as a user would for a Lambda run locally.
func SetEnv(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL", Endpoint(t))
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

// AtomicDynamoDB returns a transport that sends one DynamoDB request at a
// time (per process) and everything else unchanged.
//
// moto rolls a failed TransactWriteItems back by restoring a copy of each
// table taken when the transaction started, which erases writes that other
// requests committed in the meantime. Real DynamoDB executes every request
// atomically; serializing requests restores that guarantee, while the
// concurrency between requests, which is what the code under test must
// handle, is kept.
func AtomicDynamoDB(next http.RoundTripper) http.RoundTripper {
	return atomicDynamoDB{next}
}

var dynamoMu sync.Mutex

type atomicDynamoDB struct{ next http.RoundTripper }

func (t atomicDynamoDB) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_") {
		return t.next.RoundTrip(r)
	}
	dynamoMu.Lock()
	defer dynamoMu.Unlock()
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	// Read the whole response while holding the lock.
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
