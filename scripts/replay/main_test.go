package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	samples "github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/archive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack/devstacktest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/firehosearchive"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/processor"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

const vehicleID = "9d4f1b7e-2c8a-4f3d-a6b5-7e1c3d9f5a24"

// TestReplayTool runs the tool on a local stack whose archive holds the
// two sample webhooks, each delivered twice, as an operator would.
func TestReplayTool(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	res, state := devstacktest.Local(t, "replaytool", "token")

	now := time.Now()
	var entries []archive.Entry
	for i, name := range []string{"vehicle_state", "vehicle_error", "vehicle_state", "vehicle_error"} {
		entries = append(entries, archive.NewEntry(samples.MustRead("bodies/"+name+".json"), nil, name+string(rune('0'+i)), now.Add(-time.Duration(10-i)*time.Minute)))
	}
	for _, err := range firehosearchive.New(firehose.NewFromConfig(cfg), res.ArchiveStream).Archive(ctx, entries) {
		if err != nil {
			t.Fatal(err)
		}
	}
	q := sqs.NewFromConfig(cfg)
	received := func(t *testing.T) []string {
		t.Helper()
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(res.QueueURL), MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range out.Messages {
			got = append(got, *m.MessageAttributes["eventType"].StringValue+"/"+
				*m.MessageAttributes[processor.AttrReplayGeneration].StringValue)
			if body := aws.ToString(m.Body); body != string(samples.MustRead("bodies/vehicle_error.json")) && body != string(samples.MustRead("bodies/vehicle_state.json")) {
				t.Errorf("queued body is not the archived one: %.80s", body)
			}
			q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(res.QueueURL), ReceiptHandle: m.ReceiptHandle})
		}
		return got
	}

	tests := []struct {
		name, stdin string
		args        []string
		wantErr     string // "" for success
		wantOut     string
		wantQueued  string
	}{
		{"dry run", "", []string{"-from", "1h", "-dry-run"}, "", "selected 2 events", ""},
		{"not confirmed", "n\n", []string{"-from", "1h"}, "not confirmed", "selected 2 events", ""},
		{"errors only, confirmed", "y\n", []string{"-from", "1h", "-type", "VEHICLE_ERROR", "-generation", "replay-t1"}, "",
			"sent 1 events", "VEHICLE_ERROR/replay-t1"},
		{"nothing in range", "", []string{"-from", "2026-01-01", "-to", "2026-01-02"}, "", "selected 0 events", ""},
		{"rebuild into a new table", "", []string{"-from", "1h", "-yes", "-rebuild", res.StateTable + "-v2", "-create-table"}, "",
			"sent 2 events into table " + res.StateTable + "-v2", ""},
		{"rebuild into a table of another layout", "", []string{"-from", "1h", "-yes", "-rebuild", res.EventsTable}, "not as a vehicle-state table", "selected 2", ""},
		{"rebuild into a missing table", "", []string{"-from", "1h", "-yes", "-rebuild", "no-such-table"}, "no-such-table", "selected 2", ""},
		{"no -from", "", []string{"-dry-run"}, "-from is required", "", ""},
		{"a bad generation", "", []string{"-from", "1h", "-generation", "a#b"}, "-generation", "", ""},
		{"-create-table alone", "", []string{"-from", "1h", "-create-table"}, "needs -rebuild", "", ""},
		{"a bad time", "", []string{"-from", "yesterday"}, "want RFC 3339", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(ctx, append([]string{"-state", state}, tt.args...), strings.NewReader(tt.stdin), &stdout, &stderr, time.Now())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q\nstderr: %s", err, tt.wantErr, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantOut)
			}
			if got := strings.Join(received(t), " "); got != tt.wantQueued {
				t.Errorf("queued %q, want %q", got, tt.wantQueued)
			}
		})
	}
	// The rebuilt table holds the vehicle, from the first copy of each
	// event.
	st, err := dynamostore.New(dynamodb.NewFromConfig(cfg), res.EventsTable, res.StateTable+"-v2").GetVehicle(ctx, vehicleID)
	if err != nil || !st.Exists() || len(st.Signals) == 0 || len(st.Errors) != 2 {
		t.Errorf("rebuilt vehicle: %+v, %v", st, err)
	}
}
