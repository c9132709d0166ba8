package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/vehicle"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// TestMovesLegacyVehicles builds the tool and runs it with -env against
// the emulator: a vehicle in the legacy one-item format is moved, and a
// second run finds it current.
func TestMovesLegacyVehicles(t *testing.T) {
	awstest.SetEnv(t)
	ctx := context.Background()
	cfg := awstest.Config(t)
	res, err := devstack.Provision(ctx, cfg, "token", devstack.Options{Prefix: awstest.Name(t, "migrate") + "-"})
	if err != nil {
		t.Fatal(err)
	}
	ddb := dynamodb.NewFromConfig(cfg)
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	item := map[string]types.AttributeValue{ // as the one-item layout stored it
		"vehicleId": s("v-old"), "make": s("TESLA"), "model": s("Model 3"), "version": n("12"), "lastDeliveredAt": n("1767225000000"),
		"needsReauth": &types.AttributeValueMemberBOOL{Value: true},
		"signals": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"odometer-traveleddistance": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"name": s("TraveledDistance"), "group": s("Odometer"), "status": s("SUCCESS"), "eventId": s("e1"),
				"body":      &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"value": n("12345.60"), "unit": s("km")}},
				"orderedAt": n("1767225000000"), "oemUpdatedAt": n("1767225000000"), "retrievedAt": n("0"),
			}},
		}},
		"errors": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"PERMISSION:null": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"type": s("PERMISSION"), "state": s("ERROR"), "updatedAt": n("1767225000000"), "eventId": s("e2"),
			}},
		}},
	}
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(res.LegacyStateTable), Item: item}); err != nil {
		t.Fatal(err)
	}

	bin := awstest.BuildCommand(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-env"}, args...)...)
		cmd.Env = append(os.Environ(), "STATE_TABLE="+res.StateTable, "EVENTS_TABLE="+res.EventsTable)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	if out := run("-legacy-table", res.LegacyStateTable, "-dry-run"); !strings.Contains(out, "entries to store: 3") {
		t.Fatalf("dry run:\n%s", out)
	}
	if out := run("-legacy-table", res.LegacyStateTable); !strings.Contains(out, "moved: 1\n") || !strings.Contains(out, "entries stored: 3\n") {
		t.Fatalf("first run:\n%s", out)
	}
	st, err := dynamostore.New(ddb, res.EventsTable, res.StateTable).GetVehicle(ctx, "v-old") // the entries alone
	if err != nil || st.Source != vehicle.SourceEntries || st.Model != "Model 3" || !st.NeedsReauth ||
		st.Signals["odometer-traveleddistance"].Body["value"] != json.Number("12345.60") {
		t.Fatalf("moved vehicle = %+v, %v", st, err)
	}
	if out := run("-legacy-table", res.LegacyStateTable); !strings.Contains(out, "already current: 1\n") || !strings.Contains(out, "entries stored: 0\n") {
		t.Fatalf("second run:\n%s", out)
	}
}
