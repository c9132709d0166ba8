// Package amtsecret reads Smartcar's Application Management Token from AWS
// Secrets Manager through the AWS secrets cache, and can force a fresh read
// when a signature fails because the token may have been rotated.
package amtsecret

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-secretsmanager-caching-go/v2/secretcache"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// DefaultTTL is how long a token is cached.
const DefaultTTL = 5 * time.Minute

// Source supplies the tokens held in one secret. It is safe for concurrent
// use and fetches nothing until first asked.
type Source struct {
	client   secretcache.SecretsManagerAPIClient
	secretID string
	ttl      time.Duration

	mu     sync.Mutex
	cache  *secretcache.Cache
	parsed struct {
		raw    string
		tokens []string
	}
}

// New returns a Source for the secret secretID (a name or an ARN) read with
// client and cached for ttl.
func New(client secretcache.SecretsManagerAPIClient, secretID string, ttl time.Duration) (*Source, error) {
	s := &Source{client: client, secretID: secretID, ttl: ttl}
	cache, err := s.newCache()
	if err != nil {
		return nil, err
	}
	s.cache = cache
	return s, nil
}

func (s *Source) newCache() (*secretcache.Cache, error) {
	cache, err := secretcache.New(func(c *secretcache.Cache) {
		c.Client = s.client
		c.CacheItemTTL = s.ttl.Nanoseconds()
	})
	if err != nil {
		return nil, fmt.Errorf("secret cache: %w", err)
	}
	return cache, nil
}

// Tokens returns the secret's tokens, current first, from the cache.
func (s *Source) Tokens(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	cache := s.cache
	s.mu.Unlock()
	return s.read(ctx, cache)
}

// Refresh reads the secret again, bypassing the cache.
//
// The cache's own RefreshNow sleeps 2.5 to 5 s of jitter and updates the
// item without its lock, so Refresh instead reads through a new, empty
// cache, and keeps it only once it has read a valid secret: if Secrets
// Manager cannot be reached, or the secret is unusable, the tokens cached
// so far stay in use and Refresh returns the error.
func (s *Source) Refresh(ctx context.Context) ([]string, error) {
	cache, err := s.newCache()
	if err != nil {
		return nil, err
	}
	tokens, err := s.read(ctx, cache)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cache = cache
	s.mu.Unlock()
	return tokens, nil
}

func (s *Source) read(ctx context.Context, cache *secretcache.Cache) ([]string, error) {
	raw, err := cache.GetSecretStringWithContext(ctx, s.secretID)
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", s.secretID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if raw == s.parsed.raw && s.parsed.tokens != nil {
		return s.parsed.tokens, nil
	}
	tokens, err := smartcar.ParseTokens(raw)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", s.secretID, err)
	}
	s.parsed.raw, s.parsed.tokens = raw, tokens
	return tokens, nil
}

// Current reads the secret once and returns its current token: the one a
// tool signs with, as Smartcar does.
func Current(ctx context.Context, client secretcache.SecretsManagerAPIClient, secretID string) (string, error) {
	src, err := New(client, secretID, DefaultTTL)
	if err != nil {
		return "", err
	}
	tokens, err := src.Tokens(ctx)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", secretID, err)
	}
	return tokens[0], nil
}
