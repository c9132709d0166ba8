package awstest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	etypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	ftypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// fakeAWS stands for moto behind the strict layer: it records what reaches
// it and answers the strict layer's own lookups.
type fakeAWS struct {
	mu      sync.Mutex
	got     []string // X-Amz-Target of each request received
	schemas map[string]string
	maxSize string // the queue's MaximumMessageSize
}

func (f *fakeAWS) RoundTrip(r *http.Request) (*http.Response, error) {
	target := r.Header.Get("X-Amz-Target")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.got = append(f.got, target)
	f.mu.Unlock()
	answer := "{}"
	switch target {
	case "DynamoDB_20120810.DescribeTable":
		var req struct{ TableName string }
		_ = json.Unmarshal(body, &req)
		schema, ok := f.schemas[req.TableName]
		if !ok {
			return &http.Response{StatusCode: 400, Body: io.NopCloser(strings.NewReader(`{"__type":"ResourceNotFoundException"}`))}, nil
		}
		answer = `{"Table":{"TableName":"` + req.TableName + `","KeySchema":` + schema + `}}`
	case "AmazonSQS.GetQueueAttributes":
		answer = `{"Attributes":{"MaximumMessageSize":"` + f.maxSize + `"}}`
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body: io.NopCloser(strings.NewReader(answer)), Request: r}, nil
}

// passed reports whether a request for target reached the fake.
func (f *fakeAWS) passed(target string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.got {
		if t == target {
			return true
		}
	}
	return false
}

func send(t *testing.T, rt http.RoundTripper, target, body string) *http.Response {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://aws.test/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Target", target)
	r.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := rt.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// check sends body to a fresh strict layer and checks it passes or is
// refused with wantType and a message containing wantMessage.
func check(t *testing.T, f *fakeAWS, target, body, wantType, wantMessage string) {
	t.Helper()
	resp := send(t, awstest.StrictTransport(f), target, body)
	defer resp.Body.Close()
	var got struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	switch {
	case wantType == "" && (resp.StatusCode != 200 || !f.passed(target)):
		t.Errorf("refused (%d %s: %s), want passed on", resp.StatusCode, got.Type, got.Message)
	case wantType != "" && (resp.StatusCode != 400 || f.passed(target)):
		t.Errorf("answered %d and passed on: %v, want refused", resp.StatusCode, f.passed(target))
	case wantType != "" && (got.Type != wantType || !strings.Contains(got.Message, wantMessage)):
		t.Errorf("refused with %s %q, want %s %q", got.Type, got.Message, wantType, wantMessage)
	}
}

const validation = "com.amazon.coral.validate#ValidationException"

func TestStrictDynamoDBNumbers(t *testing.T) {
	const (
		overflow  = "Number overflow"
		underflow = "Number underflow"
		precision = "more than 38 significant digits"
	)
	tests := []struct {
		n, wantMessage string // wantMessage "": AWS stores it
	}{
		{"0", ""},
		{"-0", ""},
		{"0.000", ""},
		{"63.50", ""},
		{"1E-130", ""},
		{"-1e-130", ""},
		{"0.1e-129", ""},
		{"9.9999999999999999999999999999999999999E+125", ""},
		{"-9.9999999999999999999999999999999999999E+125", ""},
		{"12345678901234567890123456789012345678", ""}, // 38 digits
		{"0.00012345678901234567890123456789012345678", ""},
		{"1" + strings.Repeat("0", 40), ""}, // 1E+40: trailing zeros are trimmed
		{"1e126", overflow},
		{"1e300", overflow},
		{"-1e300", overflow},
		{"10E+125", overflow},
		{"1e99999999999999999999", overflow},
		{"1E-131", underflow},
		{"0.01e-129", underflow},
		{"123456789012345678901234567890123456789", precision}, // 39
		{"123456789012345678901234567890123456789012", precision},
		{"1.00000000000000000000000000000000000001", precision},
		{"abc", "cannot be converted"},
		{"1e", "cannot be converted"},
		{"1e+-5", "cannot be converted"},
	}
	for _, tt := range tests {
		wantType := ""
		if tt.wantMessage != "" {
			wantType = validation
		}
		n, _ := json.Marshal(tt.n)
		requests := map[string][2]string{
			"PutItem": {"DynamoDB_20120810.PutItem", `{"TableName":"t","Item":{"id":{"S":"a"},"v":{"N":` + string(n) + `}}}`},
			"UpdateItem values": {"DynamoDB_20120810.UpdateItem",
				`{"TableName":"t","Key":{"id":{"S":"a"}},"UpdateExpression":"SET v = :v","ExpressionAttributeValues":{":v":{"N":` + string(n) + `}}}`},
			"nested in a transaction": {"DynamoDB_20120810.TransactWriteItems",
				`{"TransactItems":[{"Put":{"TableName":"t","Item":{"id":{"S":"a"},"N":{"M":{"N":{"L":[{"S":"x"},{"N":` + string(n) + `}]}}}}}}]}`},
			"number set": {"DynamoDB_20120810.PutItem", `{"TableName":"t","Item":{"id":{"S":"a"},"v":{"NS":["1",` + string(n) + `]}}}`},
		}
		for name, req := range requests {
			t.Run(tt.n[:min(len(tt.n), 24)]+"/"+name, func(t *testing.T) {
				check(t, &fakeAWS{}, req[0], req[1], wantType, tt.wantMessage)
			})
		}
	}
}

func TestStrictDynamoDBKeysAndItemSize(t *testing.T) {
	const (
		hashTooLong = "Size of hashkey has exceeded the maximum size limit of2048 bytes"
		sortTooLong = "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
		tooLarge    = "Item size has exceeded the maximum allowed size"
	)
	s := func(n int) string { return `{"S":"` + strings.Repeat("k", n) + `"}` }
	b := func(n int) string { return `{"B":"` + base64.StdEncoding.EncodeToString(make([]byte, n)) + `"}` }
	// nested is an attribute value of n maps and lists, alternately.
	nested := func(n int) string {
		v := `{"S":"x"}`
		for i := range n {
			if i%2 == 0 {
				v = `{"M":{"a":` + v + `}}`
			} else {
				v = `{"L":[` + v + `]}`
			}
		}
		return v
	}
	const tooDeep = "Nesting Levels have exceeded supported limits"
	created := `{"TableName":"created","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}]}`
	tests := []struct {
		name, target, body, wantMessage string
	}{
		{"partition key 2048 bytes", "GetItem", `{"TableName":"created","Key":{"pk":` + s(2048) + `,"sk":{"S":"x"}}}`, ""},
		{"partition key 2049 bytes", "GetItem", `{"TableName":"created","Key":{"pk":` + s(2049) + `,"sk":{"S":"x"}}}`, hashTooLong},
		{"partition key 2049 bytes of UTF-8", "UpdateItem", `{"TableName":"created","Key":{"pk":{"S":"` + strings.Repeat("é", 1024) + `k"},"sk":{"S":"x"}}}`, hashTooLong},
		{"binary partition key 2049 bytes", "DeleteItem", `{"TableName":"created","Key":{"pk":` + b(2049) + `,"sk":{"S":"x"}}}`, hashTooLong},
		{"sort key 1024 bytes", "GetItem", `{"TableName":"created","Key":{"pk":{"S":"p"},"sk":` + s(1024) + `}}`, ""},
		{"sort key 1025 bytes", "GetItem", `{"TableName":"created","Key":{"pk":{"S":"p"},"sk":` + s(1025) + `}}`, sortTooLong},
		{"other attribute 5000 bytes", "PutItem", `{"TableName":"created","Item":{"pk":{"S":"p"},"sk":{"S":"s"},"x":` + s(5000) + `}}`, ""},
		{"put item key", "PutItem", `{"TableName":"created","Item":{"pk":` + s(2049) + `,"sk":{"S":"s"}}}`, hashTooLong},
		{"described table", "UpdateItem", `{"TableName":"described","Key":{"id":` + s(2049) + `}}`, hashTooLong},
		{"described table 2048", "UpdateItem", `{"TableName":"described","Key":{"id":` + s(2048) + `}}`, ""},
		{"unknown table", "GetItem", `{"TableName":"unknown","Key":{"id":` + s(5000) + `}}`, ""}, // moto answers
		{"transaction", "TransactWriteItems", `{"TransactItems":[{"ConditionCheck":{"TableName":"described","Key":{"id":{"S":"a"}}}},{"Update":{"TableName":"described","Key":{"id":` + s(2049) + `}}}]}`, hashTooLong},
		{"batch write", "BatchWriteItem", `{"RequestItems":{"described":[{"PutRequest":{"Item":{"id":` + s(2049) + `}}}]}}`, hashTooLong},
		{"batch get", "BatchGetItem", `{"RequestItems":{"described":{"Keys":[{"id":{"S":"a"}},{"id":` + s(2049) + `}]}}}`, hashTooLong},
		// 400 KB: the name "id" (2) + "a" (1) + "v" (1) + value.
		{"item 400 KB", "PutItem", `{"TableName":"described","Item":{"id":{"S":"a"},"v":` + s(400<<10-4) + `}}`, ""},
		{"item over 400 KB", "PutItem", `{"TableName":"described","Item":{"id":{"S":"a"},"v":` + s(400<<10-3) + `}}`, tooLarge},
		{"transaction put over 400 KB", "TransactWriteItems", `{"TransactItems":[{"Put":{"TableName":"described","Item":{"id":{"S":"a"},"m":{"M":{"v":` + s(400<<10) + `}}}}}]}`, tooLarge},
		{"list item over 400 KB", "PutItem", `{"TableName":"described","Item":{"id":{"S":"a"},"l":{"L":[` + strings.Repeat(s(1000)+",", 410) + `{"NULL":true}]}}}`, tooLarge},
		// Maps and lists nest at most 32 levels, in an item or in an update's values.
		{"nested 32 levels", "PutItem", `{"TableName":"described","Item":{"id":{"S":"a"},"v":` + nested(32) + `}}`, ""},
		{"nested 33 levels", "PutItem", `{"TableName":"described","Item":{"id":{"S":"a"},"v":` + nested(33) + `}}`, tooDeep},
		{"update value nested 33 levels", "UpdateItem", `{"TableName":"described","Key":{"id":{"S":"a"}},"ExpressionAttributeValues":{":v":` + nested(33) + `}}`, tooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAWS{schemas: map[string]string{"described": `[{"AttributeName":"id","KeyType":"HASH"}]`}}
			strict := awstest.StrictTransport(f)
			send(t, strict, "DynamoDB_20120810.CreateTable", created).Body.Close()
			resp := send(t, strict, "DynamoDB_20120810."+tt.target, tt.body)
			var got struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			refused := resp.StatusCode == 400 && got.Type == validation
			if want := tt.wantMessage != ""; refused != want || f.passed("DynamoDB_20120810."+tt.target) == want || !strings.Contains(got.Message, tt.wantMessage) {
				t.Errorf("answer %d %s %q (passed on: %v), want refused=%v with %q", resp.StatusCode, got.Type, got.Message,
					f.passed("DynamoDB_20120810."+tt.target), want, tt.wantMessage)
			}
		})
	}
}

func TestStrictSQSMessages(t *testing.T) {
	const invalid = "com.amazonaws.sqs#InvalidMessageContents"
	msg := func(body, attr string) string {
		b, _ := json.Marshal(map[string]any{"QueueUrl": "http://aws.test/1/q", "MessageBody": body,
			"MessageAttributes": map[string]any{"eventId": map[string]any{"DataType": "String", "StringValue": attr}}})
		return string(b)
	}
	tests := []struct {
		name, target, body, wantType string
	}{
		{"text", "SendMessage", msg("héllo\t\n\r😀 \ue000 \ufffd \U0010FFFF", "e-1"), ""},
		{"U+FFFF", "SendMessage", msg(`{"v":"`+"\uffff"+`"}`, "e-1"), invalid},
		{"U+FFFE", "SendMessage", msg("\ufffe", "e-1"), invalid},
		{"NUL", "SendMessage", msg("a\x00b", "e-1"), invalid},
		{"vertical tab", "SendMessage", msg("a\x0bb", "e-1"), invalid},
		{"unit separator", "SendMessage", msg("a\x1fb", "e-1"), invalid},
		{"attribute U+FFFF", "SendMessage", msg("ok", "e\uffff"), invalid},
		{"attribute control", "SendMessage", msg("ok", "e\x01"), invalid},
		{"binary attribute", "SendMessage", `{"QueueUrl":"q","MessageBody":"ok","MessageAttributes":{"b":{"DataType":"Binary","BinaryValue":"` +
			base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe, 0, 1}) + `"}}}`, ""},
		{"invalid UTF-8", "SendMessage", `{"QueueUrl":"q","MessageBody":"a` + "\xff" + `"}`, invalid},
		{"batch entry", "SendMessageBatch", `{"QueueUrl":"q","Entries":[{"Id":"1","MessageBody":"ok"},{"Id":"2","MessageBody":"` + "\uffff" + `"}]}`, invalid},
		{"batch", "SendMessageBatch", `{"QueueUrl":"q","Entries":[{"Id":"1","MessageBody":"ok"},{"Id":"2","MessageBody":"fine"}]}`, ""},
		// The queue allows 1024 bytes: body + "eventId" (7) + "String" (6) + "e-1" (3).
		{"at the queue's limit", "SendMessage", msg(strings.Repeat("x", 1024-16), "e-1"), ""},
		{"over the queue's limit", "SendMessage", msg(strings.Repeat("x", 1024-15), "e-1"), "com.amazonaws.sqs#InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, &fakeAWS{maxSize: "1024"}, "AmazonSQS."+tt.target, tt.body, tt.wantType, "")
		})
	}
}

// putRecordBatch is a PutRecordBatch request of records of the sizes given.
func putRecordBatch(sizes ...int) string {
	var b strings.Builder
	b.WriteString(`{"DeliveryStreamName":"s","Records":[`)
	for i, n := range sizes {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"Data":"` + base64.StdEncoding.EncodeToString(make([]byte, n)) + `"}`)
	}
	b.WriteString("]}")
	return b.String()
}

// repeat returns n copies of size.
func repeat(n, size int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = size
	}
	return out
}

func TestStrictFirehoseBatches(t *testing.T) {
	const (
		invalidArgument = "InvalidArgumentException"
		tooMany         = "1 validation error detected: Value '[501 records]' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500"
		recordTooLarge  = "at 'records.2.member.data' failed to satisfy constraint: Member must have length less than or equal to 1024000"
	)
	tests := []struct {
		name, body, wantType, wantMessage string
	}{
		{"one record", putRecordBatch(100), "", ""},
		{"500 records", putRecordBatch(repeat(500, 10)...), "", ""},
		{"501 records", putRecordBatch(repeat(501, 10)...), validation, tooMany},
		{"no record", putRecordBatch(), validation, "Member must have length greater than or equal to 1"},
		{"record of 1000 KiB", putRecordBatch(10, 1000<<10), "", ""},
		{"record over 1000 KiB", putRecordBatch(10, 1000<<10+1), validation, "1 validation error detected: " +
			"Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' " + recordTooLarge},
		{"two records over 1000 KiB", putRecordBatch(10, 1000<<10+1, 1000<<10+1), validation, "2 validation errors detected: "},
		// 4 MiB of data is about 5.6 MB of request: the limit is on the data.
		{"4 MiB", putRecordBatch(1000<<10, 1000<<10, 1000<<10, 1000<<10, 4<<20-4*(1000<<10)), "", ""},
		{"over 4 MiB", putRecordBatch(1000<<10, 1000<<10, 1000<<10, 1000<<10, 4<<20-4*(1000<<10)+1), invalidArgument, "Records size exceeds 4 MB limit"},
		{"many small records over 4 MiB", putRecordBatch(repeat(500, 8400)...), invalidArgument, "Records size exceeds 4 MB limit"},
		{"not JSON", `{"Records":`, "", ""}, // moto answers
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, &fakeAWS{}, "Firehose_20150804.PutRecordBatch", tt.body, tt.wantType, tt.wantMessage)
		})
	}
}

// putEvents is a PutEvents request of the entries given, as JSON objects.
func putEvents(entries ...string) string {
	return `{"Entries":[` + strings.Join(entries, ",") + `]}`
}

// event is a PutEvents entry with a Time, the source "s" and the detail
// type "t", whose Detail brings its size, as AWS counts it, to size
// (at least 20).
func event(size int) string {
	detail := `{"x":"` + strings.Repeat("x", size-14-1-1-8) + `"}`
	b, _ := json.Marshal(map[string]any{"EventBusName": "bus", "Time": 1.7950000001e9, "Source": "s", "DetailType": "t", "Detail": detail})
	return string(b)
}

func TestStrictEventBridgePutEvents(t *testing.T) {
	const (
		tooMany = "1 validation error detected: Value '[11 entries]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10"
		tooBig  = "Total size of the entries in the request is over the limit."
	)
	events := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = event(size)
		}
		return out
	}
	// 256 KB = 262144 bytes; é is 2 bytes of UTF-8, 😀 4.
	utf8Detail := `{"v":"` + strings.Repeat("é", (256<<10-8-12)/2) + `"}` // 8 bytes of JSON around it, 12 of source and detail type
	tests := []struct {
		name, body, wantType, wantMessage string
	}{
		{"one entry", putEvents(event(100)), "", ""},
		{"10 entries", putEvents(events(10, 100)...), "", ""},
		{"11 entries", putEvents(events(11, 100)...), validation, tooMany},
		{"no entry", putEvents(), validation, "Member must have length greater than or equal to 1"},
		{"256 KB in one entry", putEvents(event(256 << 10)), "", ""},
		{"over 256 KB in one entry", putEvents(event(256<<10 + 1)), validation, tooBig},
		{"256 KB in 4 entries", putEvents(event(64<<10), event(64<<10), event(64<<10), event(64<<10)), "", ""},
		{"over 256 KB in 4 entries", putEvents(event(64<<10), event(64<<10), event(64<<10+1), event(64<<10)), validation, tooBig},
		// Without Time, 14 bytes fewer: the same Detail fits.
		{"no Time", putEvents(`{"Source":"s","DetailType":"t","Detail":"` + strings.Repeat("x", 256<<10-2) + `"}`), "", ""},
		{"no Time over", putEvents(`{"Source":"s","DetailType":"t","Detail":"` + strings.Repeat("x", 256<<10-1) + `"}`), validation, tooBig},
		{"Time null", putEvents(`{"Time":null,"Source":"s","DetailType":"t","Detail":"` + strings.Repeat("x", 256<<10-2) + `"}`), "", ""},
		// Sizes are UTF-8 bytes, not characters; Resources count too.
		{"UTF-8 at 256 KB", putEvents(`{"Source":"source","DetailType":"detail","Detail":` + mustJSON(utf8Detail) + `}`), "", ""},
		{"UTF-8 over 256 KB", putEvents(`{"Source":"sourcé","DetailType":"detail","Detail":` + mustJSON(utf8Detail) + `}`), validation, tooBig},
		{"escaped UTF-8 over 256 KB", putEvents(`{"Source":"sourc\u00e9","DetailType":"detail","Detail":` + mustJSON(utf8Detail) + `}`), validation, tooBig},
		{"resources over 256 KB", putEvents(`{"Source":"s","DetailType":"t","Detail":"` + strings.Repeat("x", 256<<10-4) + `","Resources":["ab","😀"]}`), validation, tooBig},
		{"resources at 256 KB", putEvents(`{"Source":"s","DetailType":"t","Detail":"` + strings.Repeat("x", 256<<10-8) + `","Resources":["ab","😀"]}`), "", ""},
		{"not JSON", `{"Entries":`, "", ""}, // moto answers
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, &fakeAWS{}, "AWSEvents.PutEvents", tt.body, tt.wantType, tt.wantMessage)
		})
	}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// attempts counts the requests the SDK makes, retries included.
type attempts struct {
	mu   sync.Mutex
	n    int
	next http.RoundTripper
}

func (a *attempts) RoundTrip(r *http.Request) (*http.Response, error) {
	a.mu.Lock()
	a.n++
	a.mu.Unlock()
	return a.next.RoundTrip(r)
}

func sdkConfig(rt http.RoundTripper) aws.Config {
	return aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String("http://aws.test"), RetryMaxAttempts: 3,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		HTTPClient:  &http.Client{Transport: rt},
	}
}

// TestStrictErrorsAsTheSDKSeesThem checks that the SDK maps the answers to
// AWS's errors and, as for AWS's, makes no retry.
func TestStrictErrorsAsTheSDKSeesThem(t *testing.T) {
	ctx := context.Background()
	t.Run("SQS InvalidMessageContents", func(t *testing.T) {
		f := &fakeAWS{}
		count := &attempts{next: awstest.StrictTransport(f)}
		_, err := sqs.NewFromConfig(sdkConfig(count)).SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl: aws.String("http://aws.test/1/q"), MessageBody: aws.String(`{"v":"` + "\uffff" + `"}`),
		})
		var typed *types.InvalidMessageContents
		var api smithy.APIError
		if !errors.As(err, &typed) || !errors.As(err, &api) || api.ErrorCode() != "InvalidMessageContents" || api.ErrorFault() != smithy.FaultClient {
			t.Fatalf("err = %v, want InvalidMessageContents", err)
		}
		if count.n != 1 || f.passed("AmazonSQS.SendMessage") {
			t.Errorf("%d attempts (passed on: %v), want 1 refused", count.n, f.passed("AmazonSQS.SendMessage"))
		}
	})
	t.Run("DynamoDB ValidationException", func(t *testing.T) {
		f := &fakeAWS{}
		count := &attempts{next: awstest.StrictTransport(f)}
		_, err := dynamodb.NewFromConfig(sdkConfig(count)).PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String("t"),
			Item:      map[string]dtypes.AttributeValue{"id": &dtypes.AttributeValueMemberS{Value: "a"}, "v": &dtypes.AttributeValueMemberN{Value: "1e300"}},
		})
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" || !strings.Contains(api.ErrorMessage(), "Number overflow") {
			t.Fatalf("err = %v, want ValidationException", err)
		}
		if count.n != 1 || f.passed("DynamoDB_20120810.PutItem") {
			t.Errorf("%d attempts, want 1 refused", count.n)
		}
	})
	t.Run("Firehose", func(t *testing.T) {
		records := func(sizes ...int) []ftypes.Record {
			out := make([]ftypes.Record, len(sizes))
			for i, n := range sizes {
				out[i] = ftypes.Record{Data: make([]byte, n)}
			}
			return out
		}
		tests := []struct {
			name     string
			records  []ftypes.Record
			wantCode string
		}{
			{"501 records", records(repeat(501, 1)...), "ValidationException"},
			{"record over 1000 KiB", records(1000<<10 + 1), "ValidationException"},
			{"over 4 MiB", records(1000<<10, 1000<<10, 1000<<10, 1000<<10, 200<<10), "InvalidArgumentException"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := &fakeAWS{}
				count := &attempts{next: awstest.StrictTransport(f)}
				_, err := firehose.NewFromConfig(sdkConfig(count)).PutRecordBatch(ctx, &firehose.PutRecordBatchInput{
					DeliveryStreamName: aws.String("s"), Records: tt.records,
				})
				var api smithy.APIError
				if !errors.As(err, &api) || api.ErrorCode() != tt.wantCode {
					t.Fatalf("err = %v, want %s", err, tt.wantCode)
				}
				// Firehose's model has InvalidArgumentException, not
				// ValidationException: only the first is typed.
				var typed *ftypes.InvalidArgumentException
				if typedWant := tt.wantCode == "InvalidArgumentException"; errors.As(err, &typed) != typedWant ||
					typedWant && typed.ErrorFault() != smithy.FaultClient {
					t.Errorf("err = %v, want a typed client fault: %v", err, typedWant)
				}
				if count.n != 1 || f.passed("Firehose_20150804.PutRecordBatch") {
					t.Errorf("%d attempts, want 1 refused", count.n)
				}
			})
		}
	})
	t.Run("EventBridge", func(t *testing.T) {
		entries := func(n, detail int) []etypes.PutEventsRequestEntry {
			out := make([]etypes.PutEventsRequestEntry, n)
			for i := range out {
				out[i] = etypes.PutEventsRequestEntry{
					EventBusName: aws.String("bus"), Source: aws.String("s"), DetailType: aws.String("t"),
					Detail: aws.String(`{"v":"` + strings.Repeat("x", detail) + `"}`), Time: aws.Time(time.Unix(1795000000, 0)),
				}
			}
			return out
		}
		tests := []struct {
			name    string
			entries []etypes.PutEventsRequestEntry
			wantMsg string
		}{
			{"11 entries", entries(11, 10), "Member must have length less than or equal to 10"},
			// 14 (Time) + 1 + 1 + 8 + 262,121 = 262,145 bytes.
			{"over 256 KB", entries(1, 256<<10-23), "Total size of the entries in the request is over the limit."},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := &fakeAWS{}
				count := &attempts{next: awstest.StrictTransport(f)}
				_, err := eventbridge.NewFromConfig(sdkConfig(count)).PutEvents(ctx, &eventbridge.PutEventsInput{Entries: tt.entries})
				var api smithy.APIError
				// EventBridge's model has no ValidationException: it is not
				// typed, and the SDK does not retry it.
				if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" || !strings.Contains(api.ErrorMessage(), tt.wantMsg) {
					t.Fatalf("err = %v, want a ValidationException %q", err, tt.wantMsg)
				}
				if count.n != 1 || f.passed("AWSEvents.PutEvents") {
					t.Errorf("%d attempts, want 1 refused", count.n)
				}
			})
		}
		t.Run("256 KB", func(t *testing.T) {
			f := &fakeAWS{}
			_, err := eventbridge.NewFromConfig(sdkConfig(awstest.StrictTransport(f))).PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries(1, 256<<10-24)})
			if err != nil || !f.passed("AWSEvents.PutEvents") {
				t.Errorf("err = %v (passed on: %v), want passed on", err, f.passed("AWSEvents.PutEvents"))
			}
		})
	})
}

// TestStrictInFrontOfMoto runs the checks through Config against the
// emulator: what AWS accepts still works, what it refuses fails, and key
// schemas are learnt both from CreateTable and by asking.
func TestStrictInFrontOfMoto(t *testing.T) {
	ctx := context.Background()
	db := dynamodb.NewFromConfig(awstest.Config(t))
	table := awstest.Name(t, "strict")
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table), BillingMode: dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: dtypes.ScalarAttributeTypeS}},
		KeySchema:            []dtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: dtypes.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	fresh := dynamodb.NewFromConfig(awstest.Config(t)) // has not seen the CreateTable
	for _, client := range []*dynamodb.Client{db, fresh} {
		for _, n := range []int{2048, 2049} {
			_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(table), Key: map[string]dtypes.AttributeValue{"id": &dtypes.AttributeValueMemberS{Value: strings.Repeat("k", n)}},
				UpdateExpression:          aws.String("SET v = :v"),
				ExpressionAttributeValues: map[string]dtypes.AttributeValue{":v": &dtypes.AttributeValueMemberN{Value: "42"}},
			})
			var api smithy.APIError
			if tooLong := errors.As(err, &api) && api.ErrorCode() == "ValidationException"; tooLong != (n > 2048) {
				t.Errorf("UpdateItem with a %d-byte key: %v", n, err)
			}
			// moto itself misses a long key on GetItem: only the strict
			// layer, which must ask moto for a table it has not seen
			// created, refuses it.
			_, err = client.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: aws.String(table), Key: map[string]dtypes.AttributeValue{"id": &dtypes.AttributeValueMemberS{Value: strings.Repeat("k", n)}},
			})
			if tooLong := errors.As(err, &api) && api.ErrorCode() == "ValidationException"; tooLong != (n > 2048) {
				t.Errorf("GetItem with a %d-byte key: %v", n, err)
			}
		}
	}
	q := sqs.NewFromConfig(awstest.Config(t))
	created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name(t, "strict"))})
	if err != nil {
		t.Fatal(err)
	}
	for body, wantErr := range map[string]bool{`{"ok":"\u00e9"}`: false, "{\"bad\":\"\uffff\"}": true} {
		_, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: created.QueueUrl, MessageBody: aws.String(body)})
		var typed *types.InvalidMessageContents
		if errors.As(err, &typed) != wantErr || (err != nil) != wantErr {
			t.Errorf("SendMessage(%q) = %v, want error %v", body, err, wantErr)
		}
	}
	// EventBridge: 256 KB of entries pass, one byte more is refused.
	eb := eventbridge.NewFromConfig(awstest.Config(t))
	for _, extra := range []int{0, 1} {
		// 14 (Time) + 1 + 1 + 8 ({"v":""}) + the string.
		detail := `{"v":"` + strings.Repeat("x", 256<<10-24+extra) + `"}`
		out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []etypes.PutEventsRequestEntry{{
			Source: aws.String("s"), DetailType: aws.String("t"), Detail: aws.String(detail), Time: aws.Time(time.Now()),
		}}})
		var api smithy.APIError
		switch {
		case extra == 0 && (err != nil || out.FailedEntryCount != 0):
			t.Errorf("PutEvents of 256 KB: %v, %+v", err, out)
		case extra == 1 && (!errors.As(err, &api) || api.ErrorCode() != "ValidationException"):
			t.Errorf("PutEvents over 256 KB: %v, want ValidationException", err)
		}
	}
}
