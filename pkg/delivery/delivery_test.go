package delivery_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/events"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/delivery"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/smartcar"
)

func TestRewriteKeepsShape(t *testing.T) {
	body := events.MustRead("bodies/vehicle_state.json")
	at := time.UnixMilli(1800000000123)
	got := delivery.Rewrite{EventID: "new-event", VehicleID: "new-vehicle", DeliveryID: "new-delivery", DeliveredAt: at}.Apply(body)
	env, err := smartcar.ParseEnvelope(got)
	if err != nil {
		t.Fatal(err)
	}
	if env.EventID != "new-event" || env.VehicleID != "new-vehicle" || env.DeliveryID != "new-delivery" {
		t.Errorf("envelope = %+v", env)
	}
	ev, err := smartcar.ParseEvent(got)
	if err != nil || ev.Meta.DeliveredAt != 1800000000123 || len(ev.Signals) != 3 {
		t.Errorf("event = %+v, %v", ev, err)
	}
	if !strings.Contains(string(got), `"signals":[{"code":"tractionbattery-stateofcharge"`) {
		t.Error("the body's layout changed")
	}
	if same := (delivery.Rewrite{}).Apply(body); string(same) != string(body) {
		t.Error("an empty rewrite changed the body")
	}
}

func TestSendSigns(t *testing.T) {
	var gotSig, gotUA string
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotSig, gotUA = r.Header.Get("sc-signature"), r.UserAgent()
		gotBody, _ = io.ReadAll(r.Body)
		w.WriteHeader(202)
	}))
	defer srv.Close()
	res, err := delivery.Send(context.Background(), srv.Client(), srv.URL, "tok", []byte(`{"eventId":"e"}`))
	if err != nil || !res.OK() || res.Status != 202 {
		t.Fatalf("result %+v, %v", res, err)
	}
	if !smartcar.VerifySignature(gotBody, gotSig, []string{"tok"}) || !strings.HasPrefix(gotUA, "Smartcar/") {
		t.Errorf("signature %q, user agent %q", gotSig, gotUA)
	}
	if id := delivery.NewID(); len(id) != 36 || id[14] != '4' {
		t.Errorf("NewID = %s", id)
	}
}
