package streamlambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/publisher"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/streamlambda"
)

// recorder records what it was given and fails from failFrom.
type recorder struct {
	got      []publisher.Record
	failFrom string
}

func (r *recorder) Publish(_ context.Context, records []publisher.Record) string {
	r.got = append(r.got, records...)
	return r.failFrom
}

// streamEvent is a DynamoDB Streams event as Lambda delivers it.
const streamEvent = `{"Records":[
 {"eventID":"1","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1",
  "dynamodb":{"Keys":{"vehicleId":{"S":"v1"},"entry":{"S":"signal#odometer"}},
   "NewImage":{"vehicleId":{"S":"v1"},"entry":{"S":"signal#odometer"},"b":{"M":{"value":{"N":"12.5"},"unit":{"S":"km"},"ok":{"BOOL":true},"tags":{"L":[{"S":"a"},{"NULL":true}]}}},"s":{"S":"SUCCESS"},"oa":{"N":"1000"},"ev":{"S":"e1"}},
   "SequenceNumber":"100","SizeBytes":90,"StreamViewType":"NEW_AND_OLD_IMAGES"},
  "eventSourceARN":"arn:aws:dynamodb:us-east-1:123456789012:table/vehicles/stream/2026-11-30T00:00:00.000"},
 {"eventID":"2","eventName":"MODIFY","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1",
  "dynamodb":{"Keys":{"vehicleId":{"S":"v1"},"entry":{"S":"error#PERMISSION:null"}},
   "OldImage":{"vehicleId":{"S":"v1"},"entry":{"S":"error#PERMISSION:null"},"t":{"S":"PERMISSION"},"s":{"S":"ERROR"},"oa":{"N":"1"}},
   "NewImage":{"vehicleId":{"S":"v1"},"entry":{"S":"error#PERMISSION:null"},"t":{"S":"PERMISSION"},"s":{"S":"RESOLVED"},"oa":{"N":"2"}},
   "SequenceNumber":"200","SizeBytes":90,"StreamViewType":"NEW_AND_OLD_IMAGES"},
  "eventSourceARN":"arn:aws:dynamodb:us-east-1:123456789012:table/vehicles/stream/2026-11-30T00:00:00.000"},
 {"eventID":"3","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1",
  "dynamodb":{"Keys":{"vehicleId":{"S":"v1"},"entry":{"S":"mystery"}},"NewImage":{"vehicleId":{"S":"v1"},"entry":{"S":"mystery"}},
   "SequenceNumber":"300","SizeBytes":40,"StreamViewType":"NEW_AND_OLD_IMAGES"},
  "eventSourceARN":"arn:aws:dynamodb:us-east-1:123456789012:table/vehicles/stream/2026-11-30T00:00:00.000"}]}`

func TestHandler(t *testing.T) {
	tests := []struct {
		name     string
		failFrom string
		want     string // the batch item failure
	}{
		{"an undecodable record fails the batch from it", "", "300"},
		{"the publisher's first failure wins when earlier", "200", "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{failFrom: tt.failFrom}
			out, err := lambda.NewHandler(streamlambda.Handler(r, slog.New(slog.DiscardHandler))).Invoke(context.Background(), []byte(streamEvent))
			if err != nil {
				t.Fatal(err)
			}
			var resp events.DynamoDBEventResponse
			if err := json.Unmarshal(out, &resp); err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != tt.want {
				t.Fatalf("response %s, %v: want a failure from %s", out, err, tt.want)
			}
			if len(r.got) != 2 {
				t.Fatalf("published %d records, want the 2 before the undecodable one", len(r.got))
			}
			sg := r.got[0].Change.Signal
			if r.got[0].SequenceNumber != "100" || sg == nil || sg.Code != "odometer" || sg.Old != nil ||
				fmt.Sprint(sg.New.Body) != "map[ok:true tags:[a <nil>] unit:km value:12.5]" || sg.New.EventID != "e1" {
				t.Errorf("signal record %+v %+v", r.got[0], sg)
			}
			er := r.got[1].Change.Error
			if er == nil || er.Old.State != "ERROR" || er.New.State != "RESOLVED" || er.Key != "PERMISSION:null" {
				t.Errorf("error record %+v", r.got[1])
			}
		})
	}
}

func TestAttributeValues(t *testing.T) {
	in := map[string]events.DynamoDBAttributeValue{
		"ss": events.NewStringSetAttribute([]string{"a"}), "ns": events.NewNumberSetAttribute([]string{"1"}),
		"bs": events.NewBinarySetAttribute([][]byte{{1}}), "b": events.NewBinaryAttribute([]byte{2}),
	}
	out := streamlambda.AttributeValues(in)
	if _, ok := out["ss"].(*types.AttributeValueMemberSS); !ok {
		t.Errorf("ss: %T", out["ss"])
	}
	if _, ok := out["ns"].(*types.AttributeValueMemberNS); !ok {
		t.Errorf("ns: %T", out["ns"])
	}
	if v, ok := out["bs"].(*types.AttributeValueMemberBS); !ok || v.Value[0][0] != 1 {
		t.Errorf("bs: %#v", out["bs"])
	}
	if v, ok := out["b"].(*types.AttributeValueMemberB); !ok || v.Value[0] != 2 {
		t.Errorf("b: %#v", out["b"])
	}
	if streamlambda.AttributeValues(nil) != nil {
		t.Error("an empty image is not nil")
	}
}
