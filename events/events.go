// Package events holds the project's sample events, embedded: Smartcar
// webhook bodies (bodies/, signed with the test token
// 00000000-test-amt-0000-000000000000), API Gateway events for the receiver
// (receiver/), SQS events for the processor (processor/), DynamoDB Streams
// events of the vehicle-state table for the publisher (publisher/) and
// requests for the reconciler (reconciler/; stale.json is what its
// schedule sends). SAM CLI, `make invoke` and `make send` use them, and so
// do the tests.
package events

import (
	"embed"
	"fmt"
	"io/fs"
)

// TestToken is the Application Management Token the samples are signed
// with: a published test value, never a real token.
const TestToken = "00000000-test-amt-0000-000000000000"

//go:embed bodies receiver processor publisher reconciler
var files embed.FS

// Read returns the file at path, relative to events/: "bodies/verify.json".
func Read(path string) ([]byte, error) {
	b, err := files.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sample event: %w", err)
	}
	return b, nil
}

// Glob returns the paths of the files matching pattern, relative to
// events/: Glob("reconciler/*.json").
func Glob(pattern string) ([]string, error) { return fs.Glob(files, pattern) }

// MustRead is Read for a path fixed in code, such as a test's: it panics
// if there is no such file.
func MustRead(path string) []byte {
	b, err := Read(path)
	if err != nil {
		panic(err)
	}
	return b
}
