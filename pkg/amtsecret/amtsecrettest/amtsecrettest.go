// Package amtsecrettest provides an in-memory Secrets Manager for
// amtsecret.Source, whose outages a test can switch on and off.
package amtsecrettest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-secretsmanager-caching-go/v2/secretcache"
)

// ErrUnavailable is what Client answers while Down.
var ErrUnavailable = errors.New("amtsecrettest: secrets manager unavailable")

// Client is a secretcache.SecretsManagerAPIClient holding one secret. It
// answers DescribeSecret and GetSecretValue, the calls the secrets cache
// makes; the other methods of the interface are not implemented.
type Client struct {
	secretcache.SecretsManagerAPIClient // nil: the other methods panic

	mu       sync.Mutex
	id       string
	versions []string // the secret's values, oldest first; the last is AWSCURRENT
	down     bool
	calls    int
}

// NewClient returns a Client whose secret id holds value.
func NewClient(id, value string) *Client {
	return &Client{id: id, versions: []string{value}}
}

// Put stores a new current version of the secret.
func (c *Client) Put(value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions = append(c.versions, value)
}

// SetDown starts (true) or ends (false) an outage: while it lasts, every
// call fails with ErrUnavailable.
func (c *Client) SetDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

// Calls counts the calls made, failed ones included.
func (c *Client) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func (c *Client) versionID() string { return fmt.Sprintf("v%d", len(c.versions)) }

// check counts a call and fails it during an outage or for another secret.
func (c *Client) check(id *string) error {
	c.calls++
	if c.down {
		return ErrUnavailable
	}
	if aws.ToString(id) != c.id {
		return fmt.Errorf("amtsecrettest: no secret %q", aws.ToString(id))
	}
	return nil
}

// DescribeSecret lists the current version as AWSCURRENT.
func (c *Client) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(in.SecretId); err != nil {
		return nil, err
	}
	return &secretsmanager.DescribeSecretOutput{
		Name:               aws.String(c.id),
		VersionIdsToStages: map[string][]string{c.versionID(): {"AWSCURRENT"}},
	}, nil
}

// GetSecretValue returns the version asked for (the cache asks by the id
// DescribeSecret gave), else the current one.
func (c *Client) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(in.SecretId); err != nil {
		return nil, err
	}
	version := c.versionID()
	if v := aws.ToString(in.VersionId); v != "" {
		version = v
	}
	var n int
	if _, err := fmt.Sscanf(version, "v%d", &n); err != nil || n < 1 || n > len(c.versions) {
		return nil, fmt.Errorf("amtsecrettest: no version %q of %s", version, c.id)
	}
	return &secretsmanager.GetSecretValueOutput{
		Name:         aws.String(c.id),
		VersionId:    aws.String(version),
		SecretString: aws.String(c.versions[n-1]),
	}, nil
}
