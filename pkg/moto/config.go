package moto

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"
)

// Region and credentials the emulator is used with.
const (
	Region    = "us-east-1"
	AccessKey = "testing"
	SecretKey = "testing"
)

// Env is the environment that points a process's AWS SDK at the emulator
// at endpoint (left out when ""): its region and static credentials, and
// no shared configuration or profile of the user's to override them.
func Env(endpoint string) map[string]string {
	env := map[string]string{
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          Region,
		"AWS_ACCESS_KEY_ID":           AccessKey,
		"AWS_SECRET_ACCESS_KEY":       SecretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	}
	if endpoint != "" {
		env["AWS_ENDPOINT_URL"] = endpoint
	}
	return env
}

// Config returns an AWS config for the emulator at endpoint: its endpoint,
// static credentials and a fixed region, set only through configuration,
// and a transport that keeps DynamoDB requests atomic (see AtomicDynamoDB).
func Config(ctx context.Context, endpoint string) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(Region),
		config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")),
	)
	if err != nil {
		return aws.Config{}, err
	}
	// Set after loading: a custom client cannot take AWS_CA_BUNDLE, and the
	// emulator speaks plain HTTP anyway.
	cfg.HTTPClient = &http.Client{Transport: AtomicDynamoDB(http.DefaultTransport)}
	// moto's development server closes every connection, which makes the
	// SDK warn about response bodies it cannot drain: noise, not news.
	cfg.Logger = logging.Nop{}
	return cfg, nil
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
