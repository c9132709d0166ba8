package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/amtsecret"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// resign re-signs an API Gateway event (REST or HTTP API) whose body is
// signed with the samples' events.TestToken, so that it is signed with
// token instead: the local stack's token, so that every events/receiver
// file gives its documented answer against `make dev` whatever token it
// runs with. An event not signed with the test token (a sample whose
// signature is meant to fail, or a recording of your own) comes back
// unchanged, as does one that already matches token. It reports whether
// it re-signed.
func resign(payload []byte, token string) ([]byte, bool, error) {
	if token == "" || token == events.TestToken {
		return payload, false, nil
	}
	var ev map[string]any
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, false, fmt.Errorf("event is not a JSON object: %w", err)
	}
	headers, _ := ev["headers"].(map[string]any)
	body, _ := ev["body"].(string)
	raw := []byte(body)
	if encoded, _ := ev["isBase64Encoded"].(bool); encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, false, fmt.Errorf("event body: %w", err)
		}
		raw = b
	}
	for name, v := range headers {
		sig, ok := v.(string)
		if !ok || !strings.EqualFold(name, smartcar.SignatureHeader) || !smartcar.VerifySignature(raw, sig, []string{events.TestToken}) {
			continue
		}
		headers[name] = smartcar.Sign(token, raw)
		if mv, ok := ev["multiValueHeaders"].(map[string]any); ok {
			for k := range mv {
				if strings.EqualFold(k, smartcar.SignatureHeader) {
					mv[k] = []any{headers[name]}
				}
			}
		}
		out, err := json.Marshal(ev)
		return out, err == nil, err
	}
	return payload, false, nil
}

// resignForStack re-signs a sample signed with the test token with the
// current token of the stack's secret (see resign). If the secret cannot be
// read, the event goes as it is: the function, reading the same secret,
// will say why.
func resignForStack(ctx context.Context, cfg aws.Config, res devstack.Resources, payload []byte, stderr io.Writer) ([]byte, error) {
	if res.SecretID == "" {
		return payload, nil
	}
	token, err := amtsecret.Current(ctx, secretsmanager.NewFromConfig(cfg), res.SecretID)
	if err != nil {
		fmt.Fprintf(stderr, "invoke: the event goes unchanged: %v\n", devstack.WithAWSHint(err))
		return payload, nil
	}
	out, resigned, err := resign(payload, token)
	if resigned {
		fmt.Fprintf(stderr, "invoke: re-signed the event (signed with the samples' test token) with the current token of %s\n", res.SecretID)
	}
	return out, err
}
