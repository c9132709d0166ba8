package awstest

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Capacity meters the capacity units DynamoDB would bill for the requests
// that pass through its transport, for tests and benchmarks: moto's
// ConsumedCapacity figures are constants, so the meter sizes the items
// itself by DynamoDB's rules (itemSize) and applies DynamoDB's rounding:
//
//   - a write (PutItem, UpdateItem, DeleteItem, each BatchWriteItem
//     request) costs ceil(size/1 KB) write units, at least 1, where size is
//     the larger of the item before and after the write; a write whose
//     condition fails is charged as a write of the item as it stands;
//   - each action of a TransactWriteItems (ConditionCheck included) costs
//     twice that, cancelled or not;
//   - a strongly consistent GetItem costs ceil(size/4 KB) read units, at
//     least 1; a Query or Scan ceil(total size of the items read/4 KB), at
//     least 1; BatchGetItem each key as a GetItem; eventually consistent
//     reads half, transactional reads double.
//
// To know an item before and after a write, the meter reads it (GetItem,
// strongly consistent) through the next transport around the write; to
// size what a read with a projection or a filter read, it repeats the read
// without them. Those extra requests are neither counted nor charged. The
// before and after images are exact only when no other writer touches the
// same items at the same time, as in a benchmark that sends one event at a
// time.
type Capacity struct {
	mu      sync.Mutex
	usage   Usage
	schemas map[string]keySchema // by table name
}

// Usage is what the metered requests cost.
type Usage struct {
	RCU, WCU float64
	// Requests counts the item reads and writes sent, by operation
	// ("GetItem", "Query", "UpdateItem", ...), the meter's own left out.
	Requests map[string]int
}

// TotalRequests is the number of DynamoDB requests.
func (u Usage) TotalRequests() int {
	n := 0
	for _, c := range u.Requests {
		n += c
	}
	return n
}

// NewCapacity returns a meter with nothing counted.
func NewCapacity() *Capacity {
	return &Capacity{schemas: map[string]keySchema{}, usage: Usage{Requests: map[string]int{}}}
}

// Take returns the usage since the last Take (or since NewCapacity) and
// starts counting afresh.
func (c *Capacity) Take() Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.usage
	c.usage = Usage{Requests: map[string]int{}}
	return u
}

// Config returns cfg with its HTTP client's transport wrapped by the meter.
// cfg.HTTPClient must be an *http.Client, as awstest.Config's is.
func (c *Capacity) Config(cfg aws.Config) aws.Config {
	var next http.RoundTripper = http.DefaultTransport
	if client, ok := cfg.HTTPClient.(*http.Client); ok && client.Transport != nil {
		next = client.Transport
	}
	cfg.HTTPClient = &http.Client{Transport: c.Transport(next)}
	return cfg
}

// Transport wraps next, counting the DynamoDB requests sent through it.
func (c *Capacity) Transport(next http.RoundTripper) http.RoundTripper {
	return &capacityTransport{c: c, next: next}
}

func (c *Capacity) add(op string, rcu, wcu float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.usage.Requests[op]++
	c.usage.RCU += rcu
	c.usage.WCU += wcu
}

type capacityTransport struct {
	c    *Capacity
	next http.RoundTripper
}

// itemRef is one item a write touches.
type itemRef struct {
	table string
	key   map[string]any
	after map[string]any // the item put, when the request carries it
	put   bool           // a Put: the after image is the request's
	del   bool           // a Delete: there is no after image
	check bool           // a ConditionCheck: nothing written
}

func (t *capacityTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), dynamoDBTarget)
	if !ok || r.Body == nil {
		return t.next.RoundTrip(r)
	}
	r, body, err := bufferBody(r)
	if err != nil {
		return nil, err
	}
	var req map[string]any
	if json.Unmarshal(body, &req) != nil {
		return t.next.RoundTrip(r)
	}
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems":
		return t.write(r, op, req)
	case "GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan":
		return t.read(r, op, req)
	}
	return t.next.RoundTrip(r)
}

// ---- writes

func (t *capacityTransport) write(r *http.Request, op string, req map[string]any) (*http.Response, error) {
	refs := t.writeRefs(r, op, req)
	before := make([]int, len(refs))
	for i, ref := range refs {
		if ref.key != nil {
			before[i] = t.size(r, ref.table, ref.key)
		}
	}
	resp, respBody, err := t.send(r)
	if err != nil {
		return nil, err
	}
	succeeded := resp.StatusCode/100 == 2
	failedCondition := !succeeded && (errorType(respBody) == "ConditionalCheckFailedException" ||
		errorType(respBody) == "TransactionCanceledException")
	if !succeeded && !failedCondition {
		t.c.add(op, 0, 0) // refused or failed: nothing written, nothing billed
		return resp, nil
	}
	factor := 1.0
	if op == "TransactWriteItems" {
		factor = 2
	}
	wcu := 0.0
	for i, ref := range refs {
		size := before[i]
		if succeeded && !ref.check && !ref.del {
			after := 0
			switch {
			case ref.put:
				after = itemSize(ref.after)
			case ref.key != nil:
				after = t.size(r, ref.table, ref.key)
			}
			size = max(size, after)
		}
		wcu += factor * WriteUnits(size)
	}
	t.c.add(op, 0, wcu)
	return resp, nil
}

// writeRefs lists the items a write request touches.
func (t *capacityTransport) writeRefs(r *http.Request, op string, req map[string]any) []itemRef {
	var refs []itemRef
	one := func(table string, m map[string]any, kind string) {
		ref := itemRef{table: table}
		if key, ok := m["Key"].(map[string]any); ok {
			ref.key = key
		}
		if item, ok := m["Item"].(map[string]any); ok {
			ref.after, ref.put = item, true
			ref.key = t.keyOf(r, table, item)
		}
		ref.del = kind == "Delete" || kind == "DeleteRequest" || op == "DeleteItem"
		ref.check = kind == "ConditionCheck"
		refs = append(refs, ref)
	}
	switch op {
	case "TransactWriteItems":
		items, _ := req["TransactItems"].([]any)
		for _, ti := range items {
			actions, _ := ti.(map[string]any)
			for kind, a := range actions {
				if m, ok := a.(map[string]any); ok {
					table, _ := m["TableName"].(string)
					one(table, m, kind)
				}
			}
		}
	case "BatchWriteItem":
		requests, _ := req["RequestItems"].(map[string]any)
		for table, v := range requests {
			list, _ := v.([]any)
			for _, w := range list {
				w, _ := w.(map[string]any)
				for kind, a := range w {
					if m, ok := a.(map[string]any); ok {
						one(table, m, kind)
					}
				}
			}
		}
	default:
		table, _ := req["TableName"].(string)
		one(table, req, "")
	}
	return refs
}

// keyOf returns the primary key attributes of item in table.
func (t *capacityTransport) keyOf(r *http.Request, table string, item map[string]any) map[string]any {
	t.c.mu.Lock()
	s, ok := t.c.schemas[table]
	t.c.mu.Unlock()
	if !ok {
		if s, ok = describeKeySchema(r, t.next, table); !ok {
			return nil
		}
		t.c.mu.Lock()
		t.c.schemas[table] = s
		t.c.mu.Unlock()
	}
	key := map[string]any{s.hash: item[s.hash]}
	if s.sort != "" {
		key[s.sort] = item[s.sort]
	}
	return key
}

// size returns the size of the stored item with key, 0 if there is none.
func (t *capacityTransport) size(r *http.Request, table string, key map[string]any) int {
	var out struct{ Item map[string]any }
	if !t.call(r, "GetItem", map[string]any{"TableName": table, "Key": key, "ConsistentRead": true}, &out) {
		return 0
	}
	return itemSize(out.Item)
}

// call sends a request of the meter's own through next and decodes its
// answer into out.
func (t *capacityTransport) call(r *http.Request, op string, in, out any) bool {
	return call(r, t.next, dynamoDBTarget+op, in, out)
}

// ---- reads

func (t *capacityTransport) read(r *http.Request, op string, req map[string]any) (*http.Response, error) {
	resp, respBody, err := t.send(r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		t.c.add(op, 0, 0)
		return resp, nil
	}
	var out map[string]any
	_ = json.Unmarshal(respBody, &out)
	if narrowed(req) {
		// What was read is the whole of the items, not what was returned:
		// read them again without the projection and the filter.
		full := widen(req)
		out = nil
		t.call(r, op, full, &out)
	}
	t.c.add(op, readUnits(op, req, out), 0)
	return resp, nil
}

// readUnits prices a read request from its answer.
func readUnits(op string, req, out map[string]any) float64 {
	consistent, _ := req["ConsistentRead"].(bool)
	factor := 0.5
	if consistent {
		factor = 1
	}
	switch op {
	case "GetItem":
		item, _ := out["Item"].(map[string]any)
		return factor * ReadUnits(itemSize(item))
	case "Query", "Scan":
		items, _ := out["Items"].([]any)
		total := 0
		for _, it := range items {
			m, _ := it.(map[string]any)
			total += itemSize(m)
		}
		return factor * ReadUnits(total)
	case "TransactGetItems":
		responses, _ := out["Responses"].([]any)
		units := 0.0
		for _, x := range responses {
			m, _ := x.(map[string]any)
			item, _ := m["Item"].(map[string]any)
			units += 2 * ReadUnits(itemSize(item))
		}
		return units
	case "BatchGetItem":
		units := 0.0
		requests, _ := req["RequestItems"].(map[string]any)
		responses, _ := out["Responses"].(map[string]any)
		unprocessed, _ := out["UnprocessedKeys"].(map[string]any)
		for table, v := range requests {
			spec, _ := v.(map[string]any)
			f := 0.5
			if c, _ := spec["ConsistentRead"].(bool); c {
				f = 1
			}
			keys, _ := spec["Keys"].([]any)
			items, _ := responses[table].([]any)
			left := 0
			if u, ok := unprocessed[table].(map[string]any); ok {
				k, _ := u["Keys"].([]any)
				left = len(k)
			}
			for _, it := range items {
				m, _ := it.(map[string]any)
				units += f * ReadUnits(itemSize(m))
			}
			if missing := len(keys) - len(items) - left; missing > 0 {
				units += f * float64(missing) // a key not found costs one unit
			}
		}
		return units
	}
	return 0
}

// narrowed reports whether a read returns less than it reads.
func narrowed(req map[string]any) bool {
	for _, k := range []string{"ProjectionExpression", "AttributesToGet", "FilterExpression", "QueryFilter", "ScanFilter"} {
		if _, ok := req[k]; ok {
			return true
		}
	}
	sel, _ := req["Select"].(string)
	return sel != "" && sel != "ALL_ATTRIBUTES"
}

// widen returns req without its projection and filter, keeping only the
// expression names and values its other expressions use.
func widen(req map[string]any) map[string]any {
	full := map[string]any{}
	for k, v := range req {
		switch k {
		case "ProjectionExpression", "AttributesToGet", "FilterExpression", "QueryFilter", "ScanFilter", "Select",
			"ExpressionAttributeNames", "ExpressionAttributeValues":
		default:
			full[k] = v
		}
	}
	used, _ := req["KeyConditionExpression"].(string)
	for _, k := range []string{"ExpressionAttributeNames", "ExpressionAttributeValues"} {
		m, _ := req[k].(map[string]any)
		kept := map[string]any{}
		for name, v := range m {
			if containsToken(used, name) {
				kept[name] = v
			}
		}
		if len(kept) > 0 {
			full[k] = kept
		}
	}
	return full
}

// containsToken reports whether expr names placeholder (#n or :v) as a
// whole token, not as the prefix of a longer one.
func containsToken(expr, placeholder string) bool {
	for i := 0; ; {
		j := strings.Index(expr[i:], placeholder)
		if j < 0 {
			return false
		}
		end := i + j + len(placeholder)
		if end == len(expr) || !isNameByte(expr[end]) {
			return true
		}
		i = end
	}
}

func isNameByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// ---- units

// WriteUnits is what writing an item of size bytes costs: one unit per
// started KB, at least one.
func WriteUnits(size int) float64 { return math.Max(1, math.Ceil(float64(size)/1024)) }

// ReadUnits is what a strongly consistent read of size bytes costs: one
// unit per started 4 KB, at least one.
func ReadUnits(size int) float64 { return math.Max(1, math.Ceil(float64(size)/4096)) }

// ItemSize is an item's size by DynamoDB's rules, for an item in the JSON
// form of DynamoDB's API ({"name": {"S": "..."}, ...}).
func ItemSize(item map[string]any) int { return itemSize(item) }

// send makes the request and returns the response with its body, read and
// put back for the caller.
func (t *capacityTransport) send(r *http.Request) (*http.Response, []byte, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, b, nil
}

// errorType is the short name of a JSON-protocol error's __type.
func errorType(body []byte) string {
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Type[strings.LastIndexByte(e.Type, '#')+1:]
}
