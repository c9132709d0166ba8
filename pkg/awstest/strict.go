package awstest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// AWS limits the emulator does not enforce, as StrictTransport applies them.
const (
	maxPartitionKeyBytes = 2048
	maxSortKeyBytes      = 1024
	maxItemBytes         = 400 << 10
	maxNumberDigits      = 38
	minQueueLimit        = 1024 // the least MaximumMessageSize a queue can have

	maxFirehoseRecords     = 500
	maxFirehoseRecordBytes = 1000 << 10 // 1,024,000, before base64
	maxFirehoseBatchBytes  = 4 << 20    // the records' data, before base64

	maxEventsEntries = 10
	maxEventsBytes   = 256 << 10 // the entries' total size, counted as AWS does (eventsEntrySize)
)

// StrictTransport wraps next, a transport to moto_server, and answers
// what AWS refuses but moto accepts with the error AWS gives, never
// passing it on. For tests only; Config installs it.
//
// DynamoDB: a number (N or NS, anywhere in the request) beyond 38
// significant digits or outside 1E-130..<1E+126; a partition key over 2048
// bytes or a sort key over 1024, in a Key or an Item; an item put over
// 400 KB. Each gets 400 ValidationException, as from AWS, which the SDK
// does not retry. A table's key schema is learnt from its CreateTable or,
// when a key might be too long, from a DescribeTable sent through next
// (moto does not check signatures).
//
// SQS: a message body or String attribute value of SendMessage or
// SendMessageBatch holding a character SQS refuses (anything but #x9 #xA
// #xD #x20–#xD7FF #xE000–#xFFFD #x10000–#x10FFFF, or invalid UTF-8) gets
// 400 InvalidMessageContents; a message larger than its queue's
// MaximumMessageSize (body plus attribute names, types and values) gets
// 400 InvalidParameterValue. A batch is refused whole.
//
// Firehose: a PutRecordBatch of no record or more than 500, or with a
// record's data over 1,000 KiB (before base64), gets 400
// ValidationException; one whose records' data adds up to more than
// 4 MiB gets 400 InvalidArgumentException.
//
// EventBridge: a PutEvents of no entry or more than 10, or whose entries'
// total size is over 256 KB, gets 400 ValidationException. An entry's size
// is counted as AWS documents it ("Calculating PutEvents event entry
// size"): 14 bytes for Time if set, plus the UTF-8 bytes of Source,
// DetailType, Detail and each of Resources.
//
// The checks count significant digits as AWS does, trailing zeros trimmed:
// they pass everything AWS accepts, which is more than the code under test
// should send.
func StrictTransport(next http.RoundTripper) http.RoundTripper {
	return &strict{next: next, tables: map[string]keySchema{}, queues: map[string]int{}}
}

type strict struct {
	next   http.RoundTripper
	mu     sync.Mutex
	tables map[string]keySchema // by table name
	queues map[string]int       // MaximumMessageSize by queue URL
}

// keySchema names a table's key attributes.
type keySchema struct{ hash, sort string }

func (t *strict) RoundTrip(r *http.Request) (*http.Response, error) {
	target := r.Header.Get("X-Amz-Target")
	dynamoOp, isDynamo := strings.CutPrefix(target, dynamoDBTarget)
	isSend := target == "AmazonSQS.SendMessage" || target == "AmazonSQS.SendMessageBatch"
	isFirehose := target == firehosePutRecordBatch
	isEvents := target == eventsPutEvents
	if !isDynamo && !isSend && !isFirehose && !isEvents || r.Body == nil {
		return t.next.RoundTrip(r)
	}
	r, body, err := bufferBody(r)
	if err != nil {
		return nil, err
	}

	var reject *http.Response
	switch {
	case isDynamo:
		reject = t.checkDynamoDB(r, dynamoOp, body)
	case isSend:
		reject = t.checkSQS(r, body)
	case isEvents:
		reject = checkEvents(r, body)
	default:
		reject = checkFirehose(r, body)
	}
	if reject != nil {
		return reject, nil
	}
	resp, err := t.next.RoundTrip(r)
	if err == nil && resp.StatusCode/100 == 2 && isDynamo {
		t.learn(dynamoOp, body)
	}
	return resp, err
}

// answer is AWS's JSON-protocol error response.
func answer(r *http.Request, typ, queryCode, message string) *http.Response {
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": message})
	h := http.Header{"Content-Type": {"application/x-amz-json-1.0"}}
	if queryCode != "" {
		h.Set("X-Amzn-Query-Error", queryCode+";Sender")
	}
	return &http.Response{
		StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Request: r, Header: h,
		ContentLength: int64(len(b)), Body: io.NopCloser(bytes.NewReader(b)),
	}
}

func validation(r *http.Request, message string) *http.Response {
	return answer(r, "com.amazon.coral.validate#ValidationException", "", message)
}

// ---- DynamoDB

func (t *strict) checkDynamoDB(r *http.Request, op string, body []byte) *http.Response {
	var req map[string]any
	if json.Unmarshal(body, &req) != nil {
		return nil // moto answers it
	}
	if msg := checkNumbers(req); msg != "" {
		return validation(r, msg)
	}
	if tooDeep(req) {
		return validation(r, "Nesting Levels have exceeded supported limits")
	}
	for _, w := range writes(op, req) {
		if w.item {
			if n := itemSize(w.attrs); n > maxItemBytes {
				return validation(r, "Item size has exceeded the maximum allowed size")
			}
		}
		if msg := t.checkKeys(r, w); msg != "" {
			return validation(r, msg)
		}
	}
	return nil
}

// access is a Key or an Item of a request, with its table.
type access struct {
	table string
	attrs map[string]any
	item  bool // an Item put, not a Key
}

// writes returns the Keys and Items a request names.
func writes(op string, req map[string]any) []access {
	var out []access
	one := func(table any, m map[string]any) {
		name, _ := table.(string)
		if key, ok := m["Key"].(map[string]any); ok {
			out = append(out, access{table: name, attrs: key})
		}
		if item, ok := m["Item"].(map[string]any); ok {
			out = append(out, access{table: name, attrs: item, item: true})
		}
	}
	one(req["TableName"], req)
	items, _ := req["TransactItems"].([]any)
	for _, ti := range items {
		ops, _ := ti.(map[string]any)
		for _, o := range ops {
			if m, ok := o.(map[string]any); ok {
				one(m["TableName"], m)
			}
		}
	}
	requests, _ := req["RequestItems"].(map[string]any)
	for table, v := range requests {
		switch v := v.(type) {
		case []any: // BatchWriteItem
			for _, w := range v {
				w, _ := w.(map[string]any)
				for _, kind := range []string{"PutRequest", "DeleteRequest"} {
					if m, ok := w[kind].(map[string]any); ok {
						one(table, m)
					}
				}
			}
		case map[string]any: // BatchGetItem
			keys, _ := v["Keys"].([]any)
			for _, k := range keys {
				if k, ok := k.(map[string]any); ok {
					out = append(out, access{table: table, attrs: k})
				}
			}
		}
	}
	return out
}

// checkKeys applies the key size limits to a Key or Item.
func (t *strict) checkKeys(r *http.Request, a access) string {
	long := false
	for _, v := range a.attrs {
		long = long || keyBytes(v) > maxSortKeyBytes
	}
	if !long || a.table == "" {
		return "" // no key can be too long: the schema is not needed
	}
	schema, ok := t.schema(r, a.table)
	if !ok {
		return ""
	}
	if v, ok := a.attrs[schema.hash]; ok && keyBytes(v) > maxPartitionKeyBytes {
		return fmt.Sprintf("One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of%d bytes", maxPartitionKeyBytes)
	}
	if v, ok := a.attrs[schema.sort]; ok && schema.sort != "" && keyBytes(v) > maxSortKeyBytes {
		return fmt.Sprintf("One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of %d bytes", maxSortKeyBytes)
	}
	return ""
}

// keyBytes is the size of an S or B attribute value, 0 for others.
func keyBytes(v any) int {
	av, _ := v.(map[string]any)
	if s, ok := av["S"].(string); ok {
		return len(s)
	}
	if b, ok := av["B"].(string); ok {
		raw, _ := base64.StdEncoding.DecodeString(b)
		return len(raw)
	}
	return 0
}

// schema returns a table's key schema, asking next with a DescribeTable
// the first time.
func (t *strict) schema(r *http.Request, table string) (keySchema, bool) {
	t.mu.Lock()
	s, ok := t.tables[table]
	t.mu.Unlock()
	if ok {
		return s, true
	}
	s, ok = describeKeySchema(r, t.next, table)
	if !ok {
		return keySchema{}, false
	}
	t.mu.Lock()
	t.tables[table] = s
	t.mu.Unlock()
	return s, true
}

// learn records the key schema of a table created, and forgets a table
// deleted, through the transport.
func (t *strict) learn(op string, body []byte) {
	var req map[string]any
	if (op != "CreateTable" && op != "DeleteTable") || json.Unmarshal(body, &req) != nil {
		return
	}
	name, _ := req["TableName"].(string)
	t.mu.Lock()
	defer t.mu.Unlock()
	if op == "CreateTable" {
		t.tables[name] = schemaOf(req)
	} else {
		delete(t.tables, name)
	}
}

func schemaOf(table map[string]any) keySchema {
	var s keySchema
	elems, _ := table["KeySchema"].([]any)
	for _, e := range elems {
		e, _ := e.(map[string]any)
		name, _ := e["AttributeName"].(string)
		switch e["KeyType"] {
		case "HASH":
			s.hash = name
		case "RANGE":
			s.sort = name
		}
	}
	return s
}

// maxNesting is how deep DynamoDB lets maps and lists nest in an item.
const maxNesting = 32

// tooDeep reports whether an attribute value of an Item or of
// ExpressionAttributeValues, anywhere in the request, nests maps and lists
// deeper than DynamoDB allows.
func tooDeep(v any) bool {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if tooDeep(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if values, ok := e.(map[string]any); ok && (k == "Item" || k == "ExpressionAttributeValues") {
				for _, av := range values {
					if nesting(av) > maxNesting {
						return true
					}
				}
			}
			if tooDeep(e) {
				return true
			}
		}
	}
	return false
}

// nesting returns how many maps and lists nest in the attribute value av.
func nesting(av any) int {
	m, _ := av.(map[string]any)
	var children []any
	switch inner := m["M"].(type) {
	case map[string]any:
		for _, e := range inner {
			children = append(children, e)
		}
	default:
		l, ok := m["L"].([]any)
		if !ok {
			return 0
		}
		children = l
	}
	depth := 0
	for _, e := range children {
		depth = max(depth, nesting(e))
	}
	return depth + 1
}

// checkNumbers walks the whole request for N and NS values and returns
// AWS's message for the first it refuses.
func checkNumbers(v any) string {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if msg := checkNumbers(e); msg != "" {
				return msg
			}
		}
	case map[string]any:
		// Only an attribute value holds a string under "N" or a list of
		// strings under "NS": names of map attributes hold objects.
		if len(v) == 1 {
			if n, ok := v["N"].(string); ok {
				return numberMessage(n)
			}
			if ns, ok := v["NS"].([]any); ok {
				for _, n := range ns {
					if n, ok := n.(string); ok {
						if msg := numberMessage(n); msg != "" {
							return msg
						}
					}
				}
				return ""
			}
		}
		for _, e := range v {
			if msg := checkNumbers(e); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// numberMessage returns AWS's message refusing the number n, or "".
func numberMessage(n string) string {
	digits, exp, ok := significant(n)
	switch {
	case !ok:
		return "The parameter cannot be converted to a numeric value: " + n
	case digits == "":
		return "" // zero
	case len(digits) > maxNumberDigits:
		return "Attempting to store more than 38 significant digits in a Number"
	case exp > 125:
		return "Number overflow. Attempting to store a number with magnitude larger than supported range"
	case exp < -130:
		return "Number underflow. Attempting to store a number with magnitude smaller than supported range"
	}
	return ""
}

// significant parses a decimal number and returns its significant digits,
// leading and trailing zeros trimmed ("" for zero), and the exponent of the
// first of them.
func significant(n string) (digits string, exp int, ok bool) {
	s := strings.TrimPrefix(strings.TrimPrefix(n, "-"), "+")
	mant, e, hasExp := strings.Cut(strings.ToLower(s), "e")
	if hasExp {
		sign := 1
		if rest, ok := strings.CutPrefix(e, "-"); ok {
			sign, e = -1, rest
		} else {
			e = strings.TrimPrefix(e, "+")
		}
		if e == "" || strings.Trim(e, "0123456789") != "" {
			return "", 0, false
		}
		x, err := strconv.Atoi(e)
		if err != nil {
			x = 1 << 20 // too many digits: out of range in any case
		}
		exp = sign * x
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	all := intPart + frac
	if all == "" || strings.Trim(all, "0123456789") != "" {
		return "", 0, false
	}
	lead := len(all) - len(strings.TrimLeft(all, "0"))
	digits = strings.TrimRight(all[lead:], "0")
	if digits == "" {
		return "", 0, true
	}
	return digits, exp + len(intPart) - 1 - lead, true
}

// itemSize is an item's size by DynamoDB's rules: names plus values.
func itemSize(item map[string]any) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

// valueSize follows DynamoDB's sizes: strings and binaries their bytes,
// numbers one byte per two significant digits plus one, BOOL and NULL one,
// lists and maps 3 plus one per element plus the elements (and names).
func valueSize(v any) int {
	av, _ := v.(map[string]any)
	for typ, x := range av {
		switch typ {
		case "S", "B":
			return keyBytes(av)
		case "N":
			s, _ := x.(string)
			return numberSize(s)
		case "BOOL", "NULL":
			return 1
		case "SS", "NS", "BS":
			l, _ := x.([]any)
			n := 0
			for _, e := range l {
				e, _ := e.(string)
				switch typ {
				case "SS":
					n += len(e)
				case "NS":
					n += numberSize(e)
				default:
					n += keyBytes(map[string]any{"B": e})
				}
			}
			return n
		case "L":
			l, _ := x.([]any)
			n := 3
			for _, e := range l {
				n += 1 + valueSize(e)
			}
			return n
		case "M":
			m, _ := x.(map[string]any)
			n := 3
			for name, e := range m {
				n += 1 + len(name) + valueSize(e)
			}
			return n
		}
	}
	return 0
}

func numberSize(s string) int {
	digits, _, _ := significant(s)
	return (len(digits)+1)/2 + 1
}

// ---- SQS

func (t *strict) checkSQS(r *http.Request, body []byte) *http.Response {
	invalid := func() *http.Response {
		return answer(r, "com.amazonaws.sqs#InvalidMessageContents", "InvalidMessageContents",
			"Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
	}
	if !utf8.Valid(body) {
		return invalid()
	}
	var req struct {
		QueueUrl string
		message
		Entries []message
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	msgs := req.Entries
	if req.MessageBody != nil {
		msgs = append(msgs, req.message)
	}
	for _, m := range msgs {
		if !m.valid() {
			return invalid()
		}
	}
	largest := 0
	for _, m := range msgs {
		largest = max(largest, m.size())
	}
	if largest <= minQueueLimit {
		return nil // within any queue's limit: no need to ask
	}
	limit := t.queueLimit(r, req.QueueUrl)
	for _, m := range msgs {
		if n := m.size(); limit > 0 && n > limit {
			return answer(r, "com.amazonaws.sqs#InvalidParameterValue", "InvalidParameterValue",
				fmt.Sprintf("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", limit))
		}
	}
	return nil
}

// message is a SendMessage request or batch entry.
type message struct {
	MessageBody       *string
	MessageAttributes map[string]struct {
		DataType    string
		StringValue *string
		BinaryValue []byte
	}
}

func (m message) valid() bool {
	if m.MessageBody != nil && !sqsText(*m.MessageBody) {
		return false
	}
	for _, a := range m.MessageAttributes {
		if a.StringValue != nil && !sqsText(*a.StringValue) {
			return false
		}
	}
	return true
}

func (m message) size() int {
	n := 0
	if m.MessageBody != nil {
		n = len(*m.MessageBody)
	}
	for name, a := range m.MessageAttributes {
		n += len(name) + len(a.DataType) + len(a.BinaryValue)
		if a.StringValue != nil {
			n += len(*a.StringValue)
		}
	}
	return n
}

// sqsText reports whether SQS accepts s as message text.
func sqsText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		ok := r == 0x9 || r == 0xA || r == 0xD || 0x20 <= r && r <= 0xD7FF || 0xE000 <= r && r <= 0xFFFD || 0x10000 <= r && r <= 0x10FFFF
		if !ok {
			return false
		}
	}
	return true
}

// queueLimit returns the queue's MaximumMessageSize, asking next with a
// GetQueueAttributes the first time; 0 if unknown.
func (t *strict) queueLimit(r *http.Request, url string) int {
	t.mu.Lock()
	limit, ok := t.queues[url]
	t.mu.Unlock()
	if ok || url == "" {
		return limit
	}
	var out struct{ Attributes map[string]string }
	if !call(r, t.next, "AmazonSQS.GetQueueAttributes", map[string]any{"QueueUrl": url, "AttributeNames": []string{"MaximumMessageSize"}}, &out) {
		return 0
	}
	limit, _ = strconv.Atoi(out.Attributes["MaximumMessageSize"])
	t.mu.Lock()
	t.queues[url] = limit
	t.mu.Unlock()
	return limit
}

// ---- Firehose

// firehosePutRecordBatch is the X-Amz-Target of a PutRecordBatch.
const firehosePutRecordBatch = "Firehose_20150804.PutRecordBatch"

// checkFirehose applies PutRecordBatch's limits, with AWS's messages (the
// list of records abridged in its).
func checkFirehose(r *http.Request, body []byte) *http.Response {
	var req struct {
		Records []struct{ Data []byte } // base64 in the request
	}
	if json.Unmarshal(body, &req) != nil {
		return nil // moto answers it
	}
	var violations []string
	switch n := len(req.Records); {
	case n < 1:
		violations = append(violations, "Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case n > maxFirehoseRecords:
		violations = append(violations, fmt.Sprintf("Value '[%d records]' at 'records' failed to satisfy constraint: Member must have length less than or equal to %d", n, maxFirehoseRecords))
	}
	total := 0
	for i, rec := range req.Records {
		n := len(rec.Data)
		total += n
		if n > maxFirehoseRecordBytes {
			violations = append(violations, fmt.Sprintf("Value 'java.nio.HeapByteBuffer[pos=0 lim=%d cap=%d]' at 'records.%d.member.data' failed to satisfy constraint: Member must have length less than or equal to %d",
				n, n, i+1, maxFirehoseRecordBytes))
		}
	}
	var resp *http.Response
	switch {
	case len(violations) == 1:
		resp = validation(r, "1 validation error detected: "+violations[0])
	case len(violations) > 1:
		resp = validation(r, fmt.Sprintf("%d validation errors detected: %s", len(violations), strings.Join(violations, "; ")))
	case total > maxFirehoseBatchBytes:
		resp = answer(r, "InvalidArgumentException", "", "Records size exceeds 4 MB limit")
	default:
		return nil
	}
	resp.Header.Set("Content-Type", "application/x-amz-json-1.1")
	return resp
}

// ---- EventBridge

// eventsPutEvents is the X-Amz-Target of a PutEvents.
const eventsPutEvents = "AWSEvents.PutEvents"

// eventsEntry is a PutEvents request entry, as far as its size goes.
type eventsEntry struct {
	Time                       json.RawMessage
	Source, DetailType, Detail string
	Resources                  []string
}

// eventsEntrySize is an entry's size as EventBridge counts it against the
// 256 KB limit: 14 bytes for Time if set, plus the UTF-8 bytes of Source,
// DetailType, Detail and each of Resources (decoded from JSON, so invalid
// UTF-8 has become U+FFFD, 3 bytes, as it has for AWS).
func eventsEntrySize(e eventsEntry) int {
	n := len(e.Source) + len(e.DetailType) + len(e.Detail)
	if len(e.Time) > 0 && string(e.Time) != "null" {
		n += 14
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// checkEvents applies PutEvents' limits, with AWS's messages (the list of
// entries abridged in its).
func checkEvents(r *http.Request, body []byte) *http.Response {
	var req struct{ Entries []eventsEntry }
	if json.Unmarshal(body, &req) != nil {
		return nil // moto answers it
	}
	total := 0
	for _, e := range req.Entries {
		total += eventsEntrySize(e)
	}
	var resp *http.Response
	switch n := len(req.Entries); {
	case n < 1:
		resp = validation(r, "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case n > maxEventsEntries:
		resp = validation(r, fmt.Sprintf("1 validation error detected: Value '[%d entries]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to %d", n, maxEventsEntries))
	case total > maxEventsBytes:
		resp = validation(r, "Total size of the entries in the request is over the limit.")
	default:
		return nil
	}
	resp.Header.Set("Content-Type", "application/x-amz-json-1.1")
	return resp
}
