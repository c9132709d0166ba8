package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// region is not the emulator's default, to show that AWS_REGION is what
// decides (AWS CLI v1, which the Makefile used before, ignores it).
const region = "eu-west-2"

// setEnv points the SDK's standard configuration at the emulator through
// the environment only, in region.
func setEnv(t *testing.T) {
	t.Helper()
	awstest.SetEnv(t)
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_DEFAULT_REGION", "")
}

// stored reads a secret back from the emulator.
func stored(t *testing.T, name string) (*secretsmanager.GetSecretValueOutput, error) {
	t.Helper()
	cfg := awstest.Config(t)
	cfg.Region = region
	return secretsmanager.NewFromConfig(cfg).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
}

func secret(t *testing.T, stdin string, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errs bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(stdin), &out, &errs)
	return out.String(), err
}

// TestCreateAndPut: create stores the token read from stdin under -name in
// AWS_REGION, with the description, and prints the ARN; put replaces the
// value (a multi-line rotation JSON) and prints the new version's id.
func TestCreateAndPut(t *testing.T) {
	setEnv(t)
	name := "smartcar/" + awstest.Name(t, "amt")
	out, err := secret(t, "tok-1\n", "-name", name, "create")
	if err != nil {
		t.Fatal(err)
	}
	arn := strings.TrimSpace(out)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:"+region+":") || !strings.Contains(arn, name) || strings.Count(out, "\n") != 1 {
		t.Errorf("create printed %q, want the ARN in %s", out, region)
	}
	got, err := stored(t, name)
	if err != nil || aws.ToString(got.SecretString) != "tok-1" || aws.ToString(got.ARN) != arn {
		t.Fatalf("stored %v, %v; want tok-1 under %s", got, err, arn)
	}
	cfg := awstest.Config(t)
	cfg.Region = region
	desc, err := secretsmanager.NewFromConfig(cfg).DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil || aws.ToString(desc.Description) != Description {
		t.Errorf("description %v (%v), want %q", desc, err, Description)
	}

	rotation := "{\n  \"tokens\": [\"tok-2\",\n             \"tok-1\"]\n}\n"
	out, err = secret(t, rotation, "put", "-name", name) // flags after the command too
	if err != nil {
		t.Fatal(err)
	}
	got, err = stored(t, name)
	if err != nil || aws.ToString(got.SecretString) != strings.TrimSpace(rotation) {
		t.Fatalf("stored %v, %v; want the rotation JSON", got, err)
	}
	if strings.TrimSpace(out) != aws.ToString(got.VersionId) || out == "" {
		t.Errorf("put printed %q, want the version id %s", out, aws.ToString(got.VersionId))
	}
}

// TestRefusals: each mistake is one clear line, and nothing is stored.
func TestRefusals(t *testing.T) {
	setEnv(t)
	existing := awstest.Name(t, "amt")
	if _, err := secret(t, "tok", "-name", existing, "create"); err != nil {
		t.Fatal(err)
	}
	absent := awstest.Name(t, "amt")
	for _, tt := range []struct {
		name, stdin string
		args        []string
		want        []string
		usage       bool
	}{
		{"exists", "tok-2", []string{"-name", existing, "create"}, []string{"already exists", "make put-secret"}, false},
		{"put to no secret", "tok", []string{"-name", absent, "put"}, []string{"does not exist", "make create-secret"}, false},
		{"empty", "", []string{"-name", absent, "create"}, []string{"no value on standard input", "nothing stored"}, false},
		{"blank", " \n\t\n", []string{"-name", absent, "create"}, []string{"no value on standard input"}, false},
		{"bad rotation JSON", `{"tokens": ["new", ""]}`, []string{"-name", absent, "create"}, []string{"nothing stored", "tokens[1] is empty"}, false},
		{"not the rotation shape", `{"token": "x"}`, []string{"-name", absent, "create"}, []string{"nothing stored", "neither a token nor"}, false},
		{"too long", strings.Repeat("x", 65537), []string{"-name", absent, "create"}, []string{"65536 bytes"}, false},
		{"value on the command line", "", []string{"-name", absent, "create", "tok"}, []string{"never from the command line"}, true},
		{"no command", "tok", []string{"-name", absent}, []string{"create or put"}, true},
		{"unknown command", "tok", []string{"delete"}, []string{"create or put"}, true},
		{"empty name", "tok", []string{"-name", "", "create"}, []string{"-name is empty"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := secret(t, tt.stdin, tt.args...)
			if err == nil {
				t.Fatalf("succeeded, printing %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			var usage usageError
			if errors.As(err, &usage) != tt.usage {
				t.Errorf("error %q: usage error %v, want %v", err, !tt.usage, tt.usage)
			}
		})
	}
	if _, err := stored(t, absent); err == nil {
		t.Errorf("secret %s was created by a refused command", absent)
	}
	if got, err := stored(t, existing); err != nil || aws.ToString(got.SecretString) != "tok" {
		t.Errorf("existing secret now %v, %v; want it unchanged", got, err)
	}
}

// untouched fails the test if the value is read: a missing region or
// missing credentials are reported before anyone types a token.
type untouched struct{ t *testing.T }

func (u untouched) Read([]byte) (int, error) {
	u.t.Error("stdin read before the AWS configuration was checked")
	return 0, errors.New("unexpected read")
}

// TestNoRegionNoCredentials: without a region, or without credentials,
// the tool says what to set, in one line, before reading the value.
func TestNoRegionNoCredentials(t *testing.T) {
	for _, tt := range []struct {
		name  string
		unset []string
		want  []string
	}{
		{"no region", []string{"AWS_REGION", "AWS_DEFAULT_REGION"}, []string{"no AWS region", "set AWS_REGION"}},
		{"no credentials", []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
			"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"},
			[]string{"no AWS credentials", "AWS_PROFILE", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t)
			for _, k := range tt.unset {
				t.Setenv(k, "")
			}
			// Off EC2, the SDK's last resort for credentials is the
			// instance metadata service: not here.
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			var out, errs bytes.Buffer
			err := run(context.Background(), []string{"-name", awstest.Name(t, "amt"), "create"}, untouched{t}, &out, &errs)
			if err == nil {
				t.Fatal("succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

// TestCommand runs the built tool as the Makefile does: the value piped
// in, the ARN on stdout; a failure is one line on stderr and exit status 1.
func TestCommand(t *testing.T) {
	setEnv(t)
	bin := awstest.BuildCommand(t)
	name := awstest.Name(t, "amt")
	cmd := exec.Command(bin, "-name", name, "create")
	cmd.Stdin = strings.NewReader("tok-cli\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "arn:aws:secretsmanager:"+region+":") {
		t.Fatalf("create: %v, stdout %q, stderr %q", err, out, stderr.String())
	}
	if got, err := stored(t, name); err != nil || aws.ToString(got.SecretString) != "tok-cli" {
		t.Fatalf("stored %v, %v", got, err)
	}
	cmd = exec.Command(bin, "-name", name, "create")
	cmd.Stdin = strings.NewReader("tok-cli\n")
	stderr.Reset()
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || len(out) != 0 ||
		strings.Count(stderr.String(), "\n") != 1 || !strings.HasPrefix(stderr.String(), "secret: ") || !strings.Contains(stderr.String(), "make put-secret") {
		t.Errorf("second create: %v, stdout %q, stderr %q; want exit 1 and one line suggesting make put-secret", err, out, stderr.String())
	}
}
