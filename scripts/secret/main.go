// Command secret stores the Smartcar Application Management Token in AWS
// Secrets Manager: `secret -name NAME create` creates the secret (`make
// create-secret`), `secret -name NAME put` replaces its value (`make
// put-secret`, a token or {"tokens": ["new", "old"]} while rotating).
//
// The value is read from standard input, with a hidden prompt when that is
// a terminal, never from the command line, where shell history and process
// listings would keep it. It is checked as the receiver will read it before
// anything is stored.
//
// AWS comes from the SDK's standard configuration: AWS_PROFILE, AWS_REGION,
// AWS_ENDPOINT_URL and the usual credentials.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"golang.org/x/term"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// Description is the description of a secret created by `create`.
const Description = "Smartcar Application Management Token"

// maxValueBytes is Secrets Manager's limit on a SecretString.
const maxValueBytes = 65536

// Hints for what to set, kept to one line each.
const (
	regionHint      = "set AWS_REGION (e.g. AWS_REGION=us-east-1), or a region in your AWS_PROFILE's config"
	credentialsHint = "set AWS_PROFILE to a profile with credentials (aws configure, or aws sso login --profile NAME), " +
		"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)

// usageError is a mistake in the command line: exit status 2.
type usageError string

func (e usageError) Error() string { return string(e) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "secret:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "secret:", oneLine(err.Error()))
		os.Exit(1)
	}
}

// run runs the command line args, reading the value from stdin, printing
// the result (the secret's ARN, or the new version's id) to stdout and
// prompts to stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("secret", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "smartcar/amt", "the secret's `name` (the Makefile passes SECRET_NAME)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: secret [-name NAME] create|put

  create  creates the secret with the Application Management Token; prints its ARN
  put     replaces the secret's value: a token, or {"tokens": ["new", "old"]} while
          rotating; prints the new version's id

The value is read from standard input (hidden when typed at a terminal), never from
the command line. AWS comes from the standard configuration: AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL, credentials.

`)
		fs.PrintDefaults()
	}
	parse := func(args []string) error {
		err := fs.Parse(args)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			return usageError(err.Error())
		}
		return err
	}
	if err := parse(args); err != nil {
		return err
	}
	command := fs.Arg(0)
	// Flags may follow the command too: secret create -name NAME.
	if fs.NArg() > 0 {
		if err := parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	switch {
	case command != "create" && command != "put":
		fs.Usage()
		return usageError(fmt.Sprintf("want the command create or put, got %q", command))
	case fs.NArg() > 0:
		return usageError(fmt.Sprintf("unexpected argument %q: the value is read from standard input, never from the command line", fs.Arg(0)))
	case strings.TrimSpace(*name) == "":
		return usageError("-name is empty")
	}

	cfg, err := awsConfig(ctx)
	if err != nil {
		return err
	}
	prompt := "Application Management Token (input hidden): "
	if command == "put" {
		prompt = `New secret value, a token or {"tokens": ["new", "old"]} (input hidden): `
	}
	value, err := readValue(ctx, stdin, stderr, prompt)
	if err != nil {
		return err
	}
	if _, err := smartcar.ParseTokens(value); err != nil {
		return fmt.Errorf("nothing stored: the value is neither a token nor {\"tokens\": [\"new\", \"old\"]} (%v)", err)
	}

	client := secretsmanager.NewFromConfig(cfg)
	switch command {
	case "create":
		out, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: name, Description: aws.String(Description), SecretString: aws.String(value),
		})
		var exists *types.ResourceExistsException
		if errors.As(err, &exists) {
			return fmt.Errorf("secret %s already exists in %s: replace its value with `make put-secret`", *name, cfg.Region)
		}
		if err != nil {
			return apiError("create secret "+*name, err)
		}
		fmt.Fprintln(stdout, aws.ToString(out.ARN))
	case "put":
		out, err := client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: name, SecretString: aws.String(value)})
		var missing *types.ResourceNotFoundException
		if errors.As(err, &missing) {
			return fmt.Errorf("secret %s does not exist in %s: create it with `make create-secret`", *name, cfg.Region)
		}
		if err != nil {
			return apiError("put secret value "+*name, err)
		}
		fmt.Fprintln(stdout, aws.ToString(out.VersionId))
	}
	return nil
}

// awsConfig loads the standard configuration and makes sure it has a
// region and credentials, before anyone types a token.
func awsConfig(ctx context.Context) (aws.Config, error) {
	// The SDK's own log lines (such as its fallback to IMDSv1 while it
	// looks for credentials) would only bury the one line this tool says.
	cfg, err := config.LoadDefaultConfig(ctx, config.WithLogger(logging.Nop{}))
	if err != nil {
		return cfg, fmt.Errorf("AWS configuration: %v: check AWS_PROFILE and ~/.aws/config", err)
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS region: " + regionHint)
	}
	if cfg.Credentials == nil {
		return cfg, errors.New("no AWS credentials: " + credentialsHint)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(rctx); err != nil {
		return cfg, credentialsError(err)
	}
	return cfg, nil
}

// credentialsError says what to set. Without any configured credentials
// the SDK's last resort is the EC2 instance metadata service, and its
// error (no EC2 IMDS role found ...) says nothing useful off EC2.
func credentialsError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "IMDS") || strings.Contains(msg, "ec2imds") {
		return errors.New("no AWS credentials found: " + credentialsHint)
	}
	return fmt.Errorf("AWS credentials: %s: %s", msg, credentialsHint)
}

// apiError shortens an AWS error to its code and message, with a hint for
// rejected credentials.
func apiError(op string, err error) error {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return fmt.Errorf("%s: %w", op, err)
	}
	msg := fmt.Sprintf("%s: %s: %s", op, api.ErrorCode(), api.ErrorMessage())
	switch api.ErrorCode() {
	case "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "ExpiredTokenException", "ExpiredToken":
		msg += ": check your AWS credentials: " + credentialsHint
	case "AccessDeniedException":
		msg += ": these credentials may not manage this secret (secretsmanager:CreateSecret, secretsmanager:PutSecretValue)"
	}
	return errors.New(msg)
}

// readValue reads the secret's value: at a terminal, one line typed
// without echo after prompt; otherwise all of stdin (a JSON value may span
// lines). Surrounding white space is dropped, as the receiver drops it.
// Ctrl-C at the prompt (ctx done) gives up at once and restores the
// terminal.
func readValue(ctx context.Context, stdin io.Reader, stderr io.Writer, prompt string) (string, error) {
	var raw []byte
	var err error
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		saved, serr := term.GetState(fd)
		if serr != nil {
			return "", fmt.Errorf("read the value from standard input: %w", serr)
		}
		fmt.Fprint(stderr, prompt)
		type read struct {
			b   []byte
			err error
		}
		got := make(chan read, 1)
		go func() {
			b, err := term.ReadPassword(fd)
			got <- read{b, err}
		}()
		select {
		case r := <-got:
			raw, err = r.b, r.err
		case <-ctx.Done():
			_ = term.Restore(fd, saved)
			fmt.Fprintln(stderr)
			return "", errors.New("interrupted: nothing stored")
		}
		fmt.Fprintln(stderr)
	} else {
		raw, err = io.ReadAll(io.LimitReader(stdin, maxValueBytes+1))
	}
	if err != nil {
		return "", fmt.Errorf("read the value from standard input: %w", err)
	}
	value := strings.TrimSpace(string(raw))
	switch {
	case value == "":
		return "", errors.New("no value on standard input: nothing stored (type it at the prompt, or pipe it in: make put-secret < file)")
	case len(value) > maxValueBytes:
		return "", fmt.Errorf("the value is longer than Secrets Manager's %d bytes: nothing stored", maxValueBytes)
	}
	return value, nil
}

// oneLine joins the lines of an error message.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
