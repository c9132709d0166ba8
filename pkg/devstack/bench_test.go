package devstack_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/delivery"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/devstack"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/functions"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging/loggingtest"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/receiver"
)

// BenchmarkPipeline sends signed VEHICLE_STATE deliveries from concurrent
// senders over HTTP through the local pipeline (gateway, receiver, queue,
// processor, tables) and reports acknowledgements per second, their p50 and
// p99 latency, and events fully processed per second. The emulator bounds
// these figures; AWS would not.
func BenchmarkPipeline(b *testing.B) {
	const senders, perSender = 8, 40
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := awstest.Config(b)
	res, err := devstack.Provision(ctx, cfg, token, devstack.Options{Prefix: awstest.Name(b, "bench") + "-"})
	if err != nil {
		b.Fatal(err)
	}
	logs := &loggingtest.Buffer{}
	recv, err := functions.NewReceiver(getenv(res.ReceiverEnv()), cfg, logs)
	if err != nil {
		b.Fatal(err)
	}
	proc, err := functions.NewProcessor(getenv(res.ProcessorEnv()), cfg, logs)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = devstack.Serve(ctx, ln, lambda.NewHandler(recv)) }()
	go (&devstack.Poller{SQS: sqs.NewFromConfig(cfg), QueueURL: res.QueueURL, QueueARN: res.QueueARN, Handler: lambda.NewHandler(proc)}).Run(ctx)
	url := "http://" + ln.Addr().String() + receiver.PathWebhook
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	round := 0
	var latencies []time.Duration
	var sendTime, processTime time.Duration
	for b.Loop() {
		round++
		before := logs.Count("processing.succeeded")
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perSender {
					body := stateEvent(fmt.Sprintf("bench-%d-%d-%d", round, s, i), fmt.Sprint("bench-v", s), i, 1767225600000+int64(round*1000+i))
					body = delivery.Rewrite{DeliveredAt: time.Now()}.Apply(body)
					r, err := delivery.Send(ctx, client, url, token, body)
					if err != nil || !r.OK() {
						b.Errorf("send: %v %d", err, r.Status)
						return
					}
					mu.Lock()
					latencies = append(latencies, r.Latency)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		sendTime += time.Since(start)
		deadline := time.Now().Add(120 * time.Second)
		for logs.Count("processing.succeeded")-before < senders*perSender {
			if time.Now().After(deadline) {
				b.Fatal("events not processed within 120s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		processTime += time.Since(start)
	}
	slices.Sort(latencies)
	n := float64(senders * perSender * round)
	b.ReportMetric(n/sendTime.Seconds(), "acks/s")
	b.ReportMetric(n/processTime.Seconds(), "processed/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ack-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ack-ms")
	b.ReportMetric(senders, "senders")
}
