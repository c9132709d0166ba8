package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// TestEnvAgainstEmulator builds the tool and runs it with -env, as an
// operator of a stack this project did not make would: the tables come
// from STATE_TABLE and EVENTS_TABLE, AWS from AWS_ENDPOINT_URL and the
// standard variables.
func TestEnvAgainstEmulator(t *testing.T) {
	awstest.SetEnv(t)
	ctx := context.Background()
	cfg := awstest.Config(t)
	res, err := devstack.Provision(ctx, cfg, "token", devstack.Options{Prefix: awstest.Name(t, "state") + "-"})
	if err != nil {
		t.Fatal(err)
	}
	// A vehicle stored as the processor stores it.
	procEnv := res.ProcessorEnv()
	h, err := functions.NewProcessor(func(k string) string { return procEnv[k] }, cfg, &loggingtest.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := lambda.NewHandler(h).Invoke(ctx, samples.MustRead("processor/sqs-vehicle-state.json"))
	var resp events.SQSEventResponse
	if err != nil || json.Unmarshal(out, &resp) != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("processor: %s, %v", out, err)
	}

	bin := awstest.BuildCommand(t)
	const vehicleID = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"
	tables := []string{"STATE_TABLE=" + res.StateTable, "EVENTS_TABLE=" + res.EventsTable}
	tests := []struct {
		name       string
		env        []string
		vehicle    string
		wantCode   int
		wantStderr string
	}{
		{"stored vehicle", tables, vehicleID, 0, ""},
		{"unknown vehicle", tables, "no-such-vehicle", 1, "no-such-vehicle"},
		{"STATE_TABLE unset", []string{"STATE_TABLE="}, vehicleID, 1, "STATE_TABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-env", tt.vehicle)
			cmd.Env = append(os.Environ(), tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
			if tt.wantCode != 0 {
				if stdout.Len() != 0 {
					t.Errorf("stdout %q on failure", stdout.String())
				}
				return
			}
			var v struct {
				VehicleID string                     `json:"vehicleId"`
				Make      string                     `json:"make"`
				Signals   map[string]json.RawMessage `json:"signals"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
				t.Fatalf("stdout is not the vehicle's JSON: %v\n%s", err, stdout.String())
			}
			if v.VehicleID != vehicleID || v.Make != "TESLA" || v.Signals["tractionbattery-stateofcharge"] == nil {
				t.Errorf("vehicle %s", stdout.String())
			}
		})
	}
}
