// Command reconcile heals vehicle state after webhooks were lost: it reads
// the vehicles' current signals from Smartcar's v3 API and merges them
// through the processor's newest-wins merge, as the reconciler Lambda does
// (the same wiring, functions.NewReconcile, run in this process): a polled
// value never replaces a newer stored one, a newer one fills the gap.
//
// It chooses the vehicles by id (-vehicle), by when their state was last
// written (-since), or as the Lambda's schedule does (-stale: no news for
// -stale-after); says how many it would poll, how many API requests that
// takes at least, and which vehicles cannot be polled and why; asks before
// calling the API; polls at a bounded rate and prints what each failed
// vehicle met and the totals. The reconciler's own log lines (warnings and
// errors, as JSON) go to standard error as they happen.
//
// On the local stack of `make dev` by default, with -stack a deployed one
// (its output SmartcarCredentialsSecretArn names the credentials), with
// -env any. The local stack has no Smartcar credentials secret: the tool
// stores SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET into the emulator's
// secret devstack.SmartcarCredentialsSecret for the run. The client secret
// is never printed.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/reconcile"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcarapi"
)

const usage = `Usage: reconcile (-vehicle ID[,ID...] | -since TIME | -stale) [flags]

Polls Smartcar's API for vehicles whose webhooks may have been lost and
merges what it reads into their stored state, newest wins. TIME is RFC 3339
(2026-11-29T08:00:00Z), a UTC date (2026-11-29), or a duration before now
(24h). A vehicle is polled on behalf of its user, whose id only a webhook
brings: a vehicle stored without one cannot be polled.

Smartcar credentials: a deployed stack's secret (output
SmartcarCredentialsSecretArn), -credentials-secret, or on the local stack
SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET.

  make reconcile VEHICLE=9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24   one vehicle
  make reconcile SINCE=2026-11-29 DRY_RUN=1                     count only
  make reconcile STALE=1 STALE_AFTER=12h AWS=1                  as the schedule does, on the deployed stack

`

// The environment variables holding the Smartcar application's
// credentials for the local stack.
const (
	EnvClientID     = "SMARTCAR_CLIENT_ID"
	EnvClientSecret = "SMARTCAR_CLIENT_SECRET"
)

// The variables naming the Smartcar endpoints, the flags' defaults.
const (
	EnvAPIBase  = "SMARTCAR_API_BASE"
	EnvTokenURL = "SMARTCAR_TOKEN_URL"
)

// errNoStackSecret: the deployed stack was deployed without a Smartcar
// credentials secret, hence without the reconciler.
var errNoStackSecret = errors.New("the stack has no Smartcar credentials secret: deploy with " +
	devstack.EnvCredentialsSecret + "=<secret name or ARN> (see README: reconciling)")

// maxListed bounds the vehicles and failures printed one a line.
const maxListed = 20

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "reconcile:", devstack.WithAWSHint(err))
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	// plan chooses the vehicles, in a dry run; the run then polls the
	// vehicles it chose.
	plan              reconcile.Request
	since             time.Time // the -since time, if given
	staleAfter        time.Duration
	rate              float64
	concurrency       int
	maxVehicles       int
	apiBase           string
	tokenURL          string
	credentialsSecret string
	dryRun            bool
	yes               bool
}

func parse(args []string, stderr io.Writer, now time.Time, target *devstack.Target) (options, error) {
	fs := devstack.NewFlagSet("reconcile", usage, stderr, target)
	var o options
	vehicles := fs.String("vehicle", "", "reconcile these vehicles: `ID[,ID...]`")
	since := fs.String("since", "", "reconcile every vehicle whose state was written since `TIME`")
	fs.BoolVar(&o.plan.Stale, "stale", false, "reconcile the vehicles whose newest data is older than -stale-after and that were not "+
		"reconciled within it, the quietest first, at most -max-vehicles: what the reconciler's schedule runs")
	fs.DurationVar(&o.staleAfter, "stale-after", reconcile.DefaultStaleAfter, "with -stale: a vehicle is stale after this long without news")
	fs.IntVar(&o.maxVehicles, "max-vehicles", reconcile.DefaultMaxVehicles, "with -stale: reconcile at most `N` vehicles; the others are a next run's")
	fs.Float64Var(&o.rate, "rate", reconcile.DefaultRate, "vehicles started per second at most")
	fs.IntVar(&o.concurrency, "concurrency", reconcile.DefaultConcurrency, "vehicles polled at once at most")
	fs.StringVar(&o.apiBase, "api-base", cmp.Or(os.Getenv(EnvAPIBase), smartcarapi.DefaultAPIBase),
		"Smartcar's API `URL`, up to and including the version ($"+EnvAPIBase+" overrides the default)")
	fs.StringVar(&o.tokenURL, "token-url", cmp.Or(os.Getenv(EnvTokenURL), smartcarapi.DefaultTokenURL),
		"Smartcar's token endpoint `URL` ($"+EnvTokenURL+" overrides the default)")
	fs.StringVar(&o.credentialsSecret, "credentials-secret", "", "read the Smartcar application's {\"clientId\", \"clientSecret\"} from "+
		"the Secrets Manager secret `NAME` or ARN (default: the deployed stack's output SmartcarCredentialsSecretArn, $"+
		devstack.EnvCredentialsSecret+" with -env; on the local stack, $"+EnvClientID+" and $"+EnvClientSecret+" stored into the "+
		"emulator's secret "+devstack.SmartcarCredentialsSecret+")")
	fs.BoolVar(&o.dryRun, "dry-run", false, "say which vehicles would be polled and how many API requests that takes; call nothing, write nothing")
	fs.BoolVar(&o.yes, "yes", false, "do not ask before calling the API")
	if err := devstack.ParseFlags(fs, args); err != nil {
		return o, err
	}
	o.plan.VehicleIDs = devstack.SplitList(*vehicles)
	if *since != "" {
		var err error
		if o.since, err = devstack.ParseTime(*since, now); err != nil {
			return o, fmt.Errorf("-since: %w", err)
		}
		o.plan.Since = o.since.UTC().Format(time.RFC3339Nano)
	}
	if *vehicles != "" && len(o.plan.VehicleIDs) == 0 {
		return o, fmt.Errorf("-vehicle %q names no vehicle", *vehicles)
	}
	if o.plan.Validate() != nil {
		return o, errors.New("choose the vehicles one way: -vehicle ID[,ID...], -since TIME or -stale (VEHICLE=, SINCE= or STALE=1)")
	}
	o.plan.DryRun = true
	switch {
	case !(o.rate > 0) || math.IsInf(o.rate, 0):
		return o, fmt.Errorf("-rate %v: want a positive number of vehicles per second", o.rate)
	case o.concurrency <= 0:
		return o, fmt.Errorf("-concurrency %d: want a positive number of vehicles", o.concurrency)
	case o.maxVehicles <= 0:
		return o, fmt.Errorf("-max-vehicles %d: want a positive number of vehicles", o.maxVehicles)
	case o.staleAfter <= 0:
		return o, fmt.Errorf("-stale-after %v: want a positive duration (6h)", o.staleAfter)
	}
	if err := errors.Join(functions.CheckEndpoint("-api-base", o.apiBase), functions.CheckEndpoint("-token-url", o.tokenURL)); err != nil {
		return o, err
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, now time.Time) error {
	var target devstack.Target
	o, err := parse(args, stderr, now, &target)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	target.Needs = []string{devstack.EnvStateTable, devstack.EnvEventsTable}
	if !o.dryRun && o.credentialsSecret == "" {
		target.Needs = append(target.Needs, devstack.EnvCredentialsSecret)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	res, cfg, err := target.Resolve(ctx)
	if err != nil {
		return err
	}
	if res.StateTable == "" || res.EventsTable == "" {
		return errors.New("the stack names no vehicle-state or events table (outputs StateTableName, EventsTableName)")
	}
	secret, local, err := credentials(o, target, res)
	if err != nil {
		return err
	}
	if secret == "" {
		// A dry run reads no secret; the configuration wants a name.
		secret = devstack.SmartcarCredentialsSecret
		if target.Stack != "" {
			fmt.Fprintf(stderr, "note: %v; a dry run needs none\n", errNoStackSecret)
		}
	}

	env := map[string]string{
		devstack.EnvStateTable:        res.StateTable,
		devstack.EnvEventsTable:       res.EventsTable,
		devstack.EnvCredentialsSecret: secret,
		EnvAPIBase:                    o.apiBase,
		EnvTokenURL:                   o.tokenURL,
		"RECONCILE_RATE":              strconv.FormatFloat(o.rate, 'g', -1, 64),
		"RECONCILE_CONCURRENCY":       strconv.Itoa(o.concurrency),
		"RECONCILE_STALE_AFTER":       o.staleAfter.String(),
		"RECONCILE_MAX_VEHICLES":      strconv.Itoa(o.maxVehicles),
		"LOG_LEVEL":                   devstack.ToolLogLevel(),
	}
	rec, err := functions.NewReconcile(func(k string) string { return env[k] }, cfg, emf.WithoutMetrics(stderr), nil)
	if err != nil {
		return err
	}

	plan, err := rec.Run(ctx, o.plan)
	if err != nil {
		return err
	}
	polled := printPlan(stdout, o, plan)
	if o.dryRun || polled == 0 {
		return nil
	}
	if !o.yes && !devstack.Confirm(stdin, stderr, fmt.Sprintf("Poll %s with Smartcar's API (at least %s)? [y/N] ",
		count(polled, "vehicle"), count(polled, "request"))) {
		return errors.New("not confirmed: nothing polled")
	}
	if local != nil {
		if err := storeCredentials(ctx, secretsmanager.NewFromConfig(cfg), secret, *local); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "reconciling %s at %g/s (about %v)\n", count(plan.Selected, "vehicle"), o.rate, devstack.ETA(plan.Selected, o.rate))
	// By id: choosing them again would scan the table again.
	chosen := make([]string, len(plan.Results))
	for i, r := range plan.Results {
		chosen[i] = r.VehicleID
	}
	rep, err := rec.Run(ctx, reconcile.Request{VehicleIDs: chosen})
	printReport(stdout, rep)
	return err
}

// appCredentials are the Smartcar application's, as its secret holds them.
type appCredentials struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// credentials returns the secret the run reads the Smartcar credentials
// from ("" in a dry run that has none) and, on the local stack, the
// credentials of the environment to store into it first.
func credentials(o options, target devstack.Target, res devstack.Resources) (string, *appCredentials, error) {
	if o.credentialsSecret != "" {
		return o.credentialsSecret, nil, nil
	}
	local := target.Stack == "" && !target.Env
	if local {
		id, secret := strings.TrimSpace(os.Getenv(EnvClientID)), strings.TrimSpace(os.Getenv(EnvClientSecret))
		switch {
		case id != "" && secret != "":
			return devstack.SmartcarCredentialsSecret, &appCredentials{ClientID: id, ClientSecret: secret}, nil
		case id != "" || secret != "":
			return "", nil, fmt.Errorf("set both %s and %s (the Smartcar application's credentials), not one", EnvClientID, EnvClientSecret)
		}
	}
	switch {
	case res.CredentialsSecret != "":
		return res.CredentialsSecret, nil, nil
	case o.dryRun:
		return "", nil, nil
	case local:
		return "", nil, fmt.Errorf("the local stack has no Smartcar credentials: set %s and %s to your Smartcar application's "+
			"(the tool stores them in the emulator's secret %s), or name a secret with -credentials-secret",
			EnvClientID, EnvClientSecret, devstack.SmartcarCredentialsSecret)
	case target.Stack != "":
		return "", nil, errNoStackSecret
	}
	return "", nil, fmt.Errorf("-env: %s not set: name the Smartcar credentials secret, or pass -credentials-secret", devstack.EnvCredentialsSecret)
}

// storeCredentials creates the secret holding c, or gives it c as its new
// value. Its errors never carry the client secret.
func storeCredentials(ctx context.Context, sm devstack.SecretsAPI, name string, c appCredentials) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	err = devstack.PutSecret(ctx, sm, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(b)),
		Description: aws.String("The Smartcar application's clientId and clientSecret, for make reconcile")})
	if err != nil {
		return fmt.Errorf("store %s and %s in the secret %s: %w", EnvClientID, EnvClientSecret, name, err)
	}
	return nil
}

// printPlan prints what a dry run of the request found, and returns how
// many vehicles would be polled.
func printPlan(w io.Writer, o options, plan reconcile.Report) int {
	switch {
	case len(o.plan.VehicleIDs) > 0:
		fmt.Fprintf(w, "selected %s (listed)\n", count(plan.Selected, "vehicle"))
	case o.plan.Since != "":
		fmt.Fprintf(w, "selected %s whose state was written since %s\n", count(plan.Selected, "vehicle"), o.since.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "selected %s with a user id whose newest data is older than %v and not reconciled within it (at most %d; %d others left out)\n",
			count(plan.Selected, "stale vehicle"), o.staleAfter, o.maxVehicles, plan.Skipped)
	}
	var polled, cannot []reconcile.Result
	for _, r := range plan.Results {
		if r.Err == nil {
			polled = append(polled, r)
		} else {
			cannot = append(cannot, r)
		}
	}
	if len(polled) > 0 {
		ids := make([]string, 0, maxListed)
		for _, r := range polled[:min(len(polled), maxListed)] {
			ids = append(ids, r.VehicleID)
		}
		more := ""
		if n := len(polled) - len(ids); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		fmt.Fprintf(w, "would poll %s: %s%s\n", count(len(polled), "vehicle"), strings.Join(ids, ", "), more)
	}
	if len(cannot) > 0 {
		fmt.Fprintf(w, "%s cannot be polled:\n", count(len(cannot), "vehicle"))
		listFailures(w, cannot)
	}
	if len(polled) == 0 {
		fmt.Fprintln(w, "nothing to poll: no API request to make")
		return 0
	}
	fmt.Fprintf(w, "API requests: at least %s (one per vehicle; more pages if a vehicle reports over %d signals) and 1 token request\n",
		count(plan.APICalls, "signals request"), smartcarapi.DefaultPageSize)
	return len(polled)
}

// printReport prints what a run did: each failed vehicle's error, then
// the totals. Why a run stopped is its error, which main prints.
func printReport(w io.Writer, rep reconcile.Report) {
	var failed []reconcile.Result
	notPolled := 0
	for _, r := range rep.Results {
		switch {
		case r.Err == nil:
		case errors.Is(r.Err, reconcile.ErrStopped):
			notPolled++ // the stop's cause is said once, below
		default:
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "%s failed:\n", count(len(failed), "vehicle"))
		listFailures(w, failed)
	}
	if notPolled > 0 {
		fmt.Fprintf(w, "%s not polled or cancelled: the run stopped\n", count(notPolled, "vehicle"))
	}
	fmt.Fprintf(w, "reconciled %s, %s healed (%d polled), %d failed, %s to the signals endpoint, %d unfinished\n",
		count(rep.Reconciled, "vehicle"), count(rep.SignalsHealed, "signal"), rep.SignalsPolled, rep.Failed,
		count(rep.APICalls, "API call"), rep.Unfinished)
}

// listFailures prints each result's vehicle and error, at most maxListed.
func listFailures(w io.Writer, results []reconcile.Result) {
	for _, r := range results[:min(len(results), maxListed)] {
		fmt.Fprintf(w, "  %s  %s\n", r.VehicleID, strings.TrimPrefix(r.Err.Error(), "reconcile vehicle "+r.VehicleID+": "))
	}
	if n := len(results) - maxListed; n > 0 {
		fmt.Fprintf(w, "  and %d more (the reconciler's log lines on standard error name each)\n", n)
	}
}

// count writes n and noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
