package smartcarapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

// Signal is one signal of a vehicle, as the API gave it: an item {id,
// type: "signal", attributes: {code, name, group, status, body}, meta:
// {retrievedAt, oemUpdatedAt}}.
//
// Times are smartcar.Millis, epoch milliseconds (0: absent or unreadable),
// as the processor's newest-wins merge compares them for webhook signals:
// the reference shows them as epoch seconds (1696156800) where webhooks
// send milliseconds, so both are read, told apart by magnitude, and so are
// ISO-8601 strings.
//
// The attributes are read as a webhook's signal is (smartcar.ReadSignal),
// so Signal holds what the processor's merge takes; the API may also give
// the status as a bare string.
type Signal struct {
	ID string // the item's id; "" if none
	smartcar.Signal
}

// next says what a page's links.next said.
type next int

const (
	nextUnknown next = iota // no links object, or no next member
	nextMore                // a non-empty next link
	nextEnd                 // next null or ""
)

// page is one decoded answer of the signals endpoint.
type page struct {
	signals  []Signal
	items    int // data's length, skipped items included
	skipped  int
	pageSize int // meta.pageSize; 0 if absent
	next     next
}

// more reports whether another page is to be read after p, asked with
// pageSize asked.
func (p page) more(asked int) bool {
	switch {
	case p.items == 0:
		return false
	case p.next != nextUnknown:
		return p.next == nextMore
	}
	size := asked
	if p.pageSize > 0 {
		size = p.pageSize
	}
	return p.items >= size
}

// parsePage decodes an answer of the signals endpoint: a JSON object with
// a data array of objects (null reads as empty). Items of another type
// than "signal", or with neither code nor name, are skipped and counted.
func parsePage(body []byte) (page, error) {
	doc, err := decodeObject(body)
	if err != nil {
		return page{}, err
	}
	raw, present := doc["data"]
	if !present {
		return page{}, fmt.Errorf("%w: no data array", ErrMalformed)
	}
	data, ok := raw.([]any)
	if !ok && raw != nil {
		return page{}, fmt.Errorf("%w: data is not an array", ErrMalformed)
	}
	var p page
	p.items = len(data)
	for i, d := range data {
		item, ok := d.(map[string]any)
		if !ok {
			return page{}, fmt.Errorf("%w: data[%d] is not an object", ErrMalformed, i)
		}
		if t := text(item["type"]); t != "" && t != "signal" {
			p.skipped++
			continue
		}
		s, ok := signal(item)
		if !ok {
			p.skipped++
			continue
		}
		p.signals = append(p.signals, s)
	}
	if meta, ok := doc["meta"].(map[string]any); ok {
		if n, err := strconv.Atoi(text(meta["pageSize"])); err == nil && n > 0 {
			p.pageSize = n
		}
	}
	if links, ok := doc["links"].(map[string]any); ok {
		if n, present := links["next"]; present {
			p.next = nextEnd
			if text(n) != "" {
				p.next = nextMore
			}
		}
	}
	return p, nil
}

// signal reads one item of data, and reports whether it names its signal
// (a code or a name).
func signal(item map[string]any) (Signal, bool) {
	attrs, _ := item["attributes"].(map[string]any)
	meta, ok := item["meta"].(map[string]any)
	if !ok {
		meta, _ = attrs["meta"].(map[string]any)
	}
	s := Signal{ID: text(item["id"]), Signal: smartcar.ReadSignal(attrs, meta)}
	if st, ok := attrs["status"].(string); ok && st != "" {
		s.Status = strings.ToUpper(st)
	}
	return s, text(attrs["code"]) != "" || s.Name != ""
}

// parseToken reads the token endpoint's answer {"access_token",
// "token_type": "Bearer", "expires_in"} and returns the token and how long
// to use it (tokenTTL; an hour is assumed without expires_in).
func parseToken(body []byte) (string, time.Duration, error) {
	doc, err := decodeObject(body)
	if err != nil {
		return "", 0, err
	}
	tok := text(doc["access_token"])
	if tok == "" {
		return "", 0, fmt.Errorf("%w: no access_token", ErrMalformed)
	}
	if t := text(doc["token_type"]); t != "" && !strings.EqualFold(t, "bearer") {
		return "", 0, fmt.Errorf("%w: token_type %.32q, not Bearer", ErrMalformed, t)
	}
	expiresIn := defaultExpiresIn
	if v, present := doc["expires_in"]; present && v != nil {
		secs, err := strconv.ParseFloat(text(v), 64)
		if err != nil || secs < 0 || secs > 1e9 {
			return "", 0, fmt.Errorf("%w: expires_in is not a number of seconds", ErrMalformed)
		}
		expiresIn = time.Duration(secs * float64(time.Second))
	}
	return tok, tokenTTL(expiresIn), nil
}

// decodeObject decodes a JSON object, numbers as json.Number. Its errors
// give where the JSON breaks, never the text around it.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			return nil, fmt.Errorf("%w: not JSON (syntax error at byte %d of %d)", ErrMalformed, se.Offset, len(body))
		}
		return nil, fmt.Errorf("%w: not JSON (%d bytes, cut short or empty)", ErrMalformed, len(body))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	return obj, nil
}
