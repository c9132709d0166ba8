package amtsecret_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/amtsecret"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

func TestTokensCachedAndRefreshed(t *testing.T) {
	ctx := context.Background()
	client := secretsmanager.NewFromConfig(awstest.Config(t))
	name := awstest.Name(t, "amtsecret")
	if _, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("token-1")}); err != nil {
		t.Fatal(err)
	}
	src, err := amtsecret.New(client, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := src.Tokens(ctx); err != nil || !slices.Equal(got, []string{"token-1"}) {
		t.Fatalf("Tokens = %v, %v", got, err)
	}

	rotated := `{"tokens":["token-2","token-1"]}`
	if _, err := client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(rotated)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := src.Tokens(ctx); !slices.Equal(got, []string{"token-1"}) {
		t.Fatalf("cache bypassed before its TTL: %v", got)
	}
	start := time.Now()
	got, err := src.Refresh(ctx)
	if err != nil || !slices.Equal(got, []string{"token-2", "token-1"}) {
		t.Fatalf("Refresh = %v, %v", got, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Refresh took %v; it must not sleep", d)
	}
	if got, _ := src.Tokens(ctx); !slices.Equal(got, []string{"token-2", "token-1"}) {
		t.Fatalf("Tokens after Refresh = %v", got)
	}
}

func TestTokensErrors(t *testing.T) {
	ctx := context.Background()
	client := secretsmanager.NewFromConfig(awstest.Config(t))
	missing, err := amtsecret.New(client, "amtsecret/does-not-exist", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Tokens(ctx); err == nil {
		t.Error("missing secret gave no error")
	}
	name := awstest.Name(t, "amtsecret")
	if _, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(`{"amt":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	bad, _ := amtsecret.New(client, name, time.Minute)
	if _, err := bad.Tokens(ctx); err == nil {
		t.Error(`secret {"amt":"x"} gave no error`)
	}
}
