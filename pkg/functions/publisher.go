package functions

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/domainevents"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/dynamostore"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/emf"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/envconfig"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/eventbus"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/logging"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/publisher"
	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/streamlambda"
)

// PublisherHandler is the publisher Lambda's handler function.
type PublisherHandler = func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

// PublisherConfig is the publisher's environment.
type PublisherConfig struct {
	EventBusName     string     // EVENT_BUS_NAME, required
	EventSource      string     // EVENT_SOURCE, default domainevents.Source
	StateTable       string     // STATE_TABLE, required: the table whose stream it reads
	LogLevel         slog.Level // LOG_LEVEL, default INFO
	MetricsNamespace string     // METRICS_NAMESPACE, default SmartcarWebhooks
}

// LoadPublisherConfig reads and validates the environment; the error names
// every missing or invalid variable.
func LoadPublisherConfig(getenv func(string) string) (PublisherConfig, error) {
	env := envconfig.New(getenv)
	cfg := PublisherConfig{
		EventBusName:     env.Required("EVENT_BUS_NAME"),
		EventSource:      env.String("EVENT_SOURCE", domainevents.Source),
		StateTable:       env.Required("STATE_TABLE"),
		LogLevel:         env.Level("LOG_LEVEL", slog.LevelInfo),
		MetricsNamespace: env.String("METRICS_NAMESPACE", emf.DefaultNamespace),
	}
	if err := env.Err(); err != nil {
		return cfg, err
	}
	if strings.HasPrefix(cfg.EventSource, "aws.") {
		return cfg, fmt.Errorf("EVENT_SOURCE: %q: sources starting with aws. are AWS's own", cfg.EventSource)
	}
	return cfg, nil
}

// NewPublisher builds the publisher's handler from its environment: the
// vehicle-state table's stream records in, domain events out on the bus.
func NewPublisher(getenv func(string) string, awsCfg aws.Config, stdout io.Writer) (PublisherHandler, error) {
	cfg, err := LoadPublisherConfig(getenv)
	if err != nil {
		return nil, err
	}
	log := logging.New(stdout, cfg.LogLevel)
	metrics := emf.NewWriter(stdout, cfg.MetricsNamespace, map[string]string{"Service": "publisher"})
	bus := eventbus.New(eventbridge.NewFromConfig(awsCfg), cfg.EventBusName, cfg.EventSource)
	// Only its vehicle reads are used: no events table.
	store := dynamostore.New(dynamodb.NewFromConfig(awsCfg), "", cfg.StateTable)
	return streamlambda.Handler(publisher.New(bus, store, log, metrics), log), nil
}
