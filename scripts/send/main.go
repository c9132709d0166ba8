// Command send signs a webhook body and POSTs it the way Smartcar does, to
// this checkout's local stack, a deployed stack (-stack: its WebhookUrl,
// signed with the current token of its secret) or any receiver URL; with
// -env it signs with the current token of the secret AMT_SECRET_ID names.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/amtsecret"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/delivery"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "send:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	var target devstack.Target
	target.AddFlags(fs)
	url := fs.String("url", "", "receiver `URL` (default: the local stack's webhook URL; with -stack the stack's WebhookUrl output)")
	token := fs.String("token", "", "`token` to sign with (default $SMARTCAR_AMT; else the local stack's development token, "+
		"or with -stack or -env the current token of the stack's secret)")
	unsigned := fs.Bool("unsigned", false, "send without SC-Signature (as Smartcar may send VERIFY)")
	eventID := fs.String("event-id", "", "replace the body's eventId (with -count > 1 and no -event-id, each send gets a new one)")
	vehicleID := fs.String("vehicle-id", "", "replace the body's vehicle id")
	keep := fs.Bool("keep-meta", false, "keep meta.deliveryId and meta.deliveredAt as they are (default: fresh, as on a real delivery; a receiver refuses a deliveredAt older than its MAX_DELIVERY_AGE as a replay)")
	count := fs.Int("count", 1, "deliveries to send (at most 100000)")
	concurrency := fs.Int("concurrency", 1, "deliveries in flight at once (at most 256)")
	timeout := fs.Duration("timeout", 15*time.Second, "per-request timeout (Smartcar's is 15s)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: send [flags] [BODY]

BODY is a file, a name from events/bodies (verify, vehicle_state, vehicle_error), or - for
standard input (the default). Prints each answer; with -count, a summary with latencies.
Sends to this checkout's local stack (make dev), to a deployed stack with -stack NAME, or to any
receiver with -url.

`)
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if *count < 1 || *count > 100000 || *concurrency < 1 || *concurrency > 256 {
		return fmt.Errorf("-count must be 1..100000 and -concurrency 1..256")
	}
	body, err := readBody(fs.Arg(0))
	if err != nil {
		return err
	}
	// Read here, not as the flag's default: -h would print the token.
	if *token == "" {
		*token = os.Getenv("SMARTCAR_AMT")
	}
	if *unsigned {
		*token = ""
	}
	needToken := *token == "" && !*unsigned
	ctx := context.Background()
	switch {
	case target.Env && target.Stack != "":
		return fmt.Errorf("-env and -stack exclude each other: pass one")
	case target.Env:
		if *url == "" {
			return fmt.Errorf("-env: pass -url, the receiver's webhook URL (the Lambdas' variables do not name it)")
		}
		if needToken {
			target.Needs = []string{devstack.EnvSecretID}
			res, cfg, err := target.Resolve(ctx)
			if err != nil {
				return err
			}
			if *token, err = currentToken(ctx, cfg, res.SecretID); err != nil {
				return err
			}
		}
	case target.Stack != "":
		if *url == "" || needToken {
			res, cfg, err := target.Resolve(ctx)
			if err != nil {
				return err
			}
			if *url = cmp.Or(*url, res.ReceiverURL); *url == "" {
				return fmt.Errorf("stack %s has no WebhookUrl output: pass -url", target.Stack)
			}
			if needToken {
				if *token, err = currentToken(ctx, cfg, res.SecretID); err != nil {
					return err
				}
			}
		}
	case *url == "" || needToken:
		local, err := target.Local()
		if err != nil {
			return fmt.Errorf("%w\n(or pass -url URL and -token TOKEN for another receiver)", err)
		}
		if *url == "" {
			*url = local.ReceiverURL
		}
		if needToken {
			if local.DevToken == "" {
				return fmt.Errorf("the local stack signs with $SMARTCAR_AMT, which is not set here: set it, or pass -token")
			}
			*token = local.DevToken
		}
	}

	client := &http.Client{Timeout: *timeout}
	results := make([]delivery.Result, *count)
	errs := make([]error, *count)
	sem := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *count {
		rw := delivery.Rewrite{EventID: *eventID, VehicleID: *vehicleID}
		if rw.EventID == "" && *count > 1 {
			rw.EventID = delivery.NewID()
		}
		if !*keep {
			rw.DeliveryID, rw.DeliveredAt = delivery.NewID(), time.Now()
		}
		b := rw.Apply(body)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i], errs[i] = delivery.Send(context.Background(), client, *url, *token, b)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return report(results, errs, elapsed)
}

// currentToken reads the current token from the secret secretID, as the
// receiver does.
func currentToken(ctx context.Context, cfg aws.Config, secretID string) (string, error) {
	token, err := amtsecret.Current(ctx, secretsmanager.NewFromConfig(cfg), secretID)
	if err != nil {
		return "", devstack.WithAWSHint(err)
	}
	return token, nil
}

func readBody(arg string) ([]byte, error) {
	switch {
	case arg == "" || arg == "-":
		return io.ReadAll(os.Stdin)
	case !strings.ContainsAny(arg, "/.") && arg != "":
		return events.Read("bodies/" + arg + ".json")
	}
	return os.ReadFile(arg)
}

func report(results []delivery.Result, errs []error, elapsed time.Duration) error {
	if len(results) == 1 {
		if errs[0] != nil {
			return errs[0]
		}
		fmt.Printf("%d %s (%v)\n", results[0].Status, results[0].Body, results[0].Latency.Round(time.Microsecond))
		if !results[0].OK() {
			os.Exit(2)
		}
		return nil
	}
	byStatus := map[string]int{}
	var latencies []time.Duration
	for i, r := range results {
		if errs[i] != nil {
			byStatus["error"]++
			continue
		}
		byStatus[fmt.Sprint(r.Status)]++
		latencies = append(latencies, r.Latency)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	fmt.Printf("sent %d in %v (%.0f/s); answers %v; latency p50 %v p99 %v max %v\n",
		len(results), elapsed.Round(time.Millisecond), float64(len(results))/elapsed.Seconds(), byStatus,
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "first error:", err)
			break
		}
	}
	if byStatus["200"] != len(results) {
		os.Exit(2)
	}
	return nil
}
