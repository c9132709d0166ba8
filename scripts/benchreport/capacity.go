package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/cost"
)

// maxRCU is the read target per event.
const maxRCU = 6

// streamLength is BenchmarkCapacity's stream: a first event and 49 steady
// ones.
const streamLength = 50

func capacityMetrics(results []result, signals string) map[string]float64 {
	return median(results, "BenchmarkCapacity/"+signals+"signals")
}

// measured turns BenchmarkCapacity's metrics into the cost model's input.
func measured(m map[string]float64) cost.Measured {
	event := func(k string) cost.Event {
		e := cost.Event{WCU: m[k+"-WCU"], RCU: m[k+"-RCU"], DynamoDBRequests: m[k+"-requests"],
			LogBytes: m[k+"-logB"], LogLines: m[k+"-loglines"], CPU: micros(m[k+"-cpu-us"])}
		if k == "steady" || k == "first" {
			e.CPU = micros(m["stream-cpu-us"]) // measured over the warm stream
		}
		return e
	}
	return cost.Measured{
		State: event("steady"), First: event("first"), Error: event("error"), Duplicate: event("duplicate"),
		Receiver:          cost.Delivery{LogBytes: m["recv-logB"], LogLines: m["recv-loglines"], CPU: micros(m["recv-cpu-us"]), MessageBytes: m["recv-msgB"]},
		ArchiveEntryBytes: m["archive-B"], ArchiveCPU: micros(m["archive-cpu-us"]),
		DomainEventsPerState: m["state-domain-events"], DomainEventsPerError: m["error-domain-events"],
	}
}

func micros(us float64) time.Duration { return time.Duration(us * float64(time.Microsecond)) }

func printCapacity(results []result) {
	// vehicleKinds are BenchmarkCapacity's sub-benchmarks, with the cost goal
	// for each, in dollars per million webhooks.
	vehicleKinds := []struct {
		signals string
		goal    float64
	}{{"10", 4}, {"85", 5}}

	// scenarios are BenchmarkCapacity's, with issue 11's WCU target for an
	// 85-signal vehicle (0: none, the figure is reported).
	scenarios := []struct {
		key, name string
		maxWCU    float64
	}{
		{"first", "First event (every signal new)", 0},
		{"steady1", "Steady event, 1 signal changed", 4},
		{"steady10", "Steady event, 10 changed", 22},
		{"duplicate", "Duplicate (Smartcar's retry)", 1},
		{"stale", "Stale (every signal older)", 2},
		{"error", "VEHICLE_ERROR", 4},
		{"stream", "Mean over a stream: first + 49 steady, 1–3 changed", 6},
	}
	metrics := map[string]map[string]float64{}
	for _, k := range vehicleKinds {
		metrics[k.signals] = capacityMetrics(results, k.signals)
	}
	fmt.Println("### DynamoDB capacity per event")
	fmt.Println()
	fmt.Println("Each event is delivered alone through the receiver and the processor (functions.NewReceiver, " +
		"functions.NewProcessor) against moto; awstest.Capacity prices every DynamoDB request as DynamoDB bills it, " +
		"from the items' sizes before and after each write (names + values; writes per started KB, transactional ×2, " +
		"failed conditions charged; reads per started 4 KB), not from moto's constant ConsumedCapacity. " +
		"Vehicles subscribe to 10 or 85 signals with Smartcar codes; eventIds are UUIDs.")
	fmt.Println()
	fmt.Println("| Scenario | 10 signals: WCU | RCU | requests | 85 signals: WCU | RCU | requests | Target (85 signals) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, sc := range scenarios {
		row := "| " + sc.name
		for _, k := range vehicleKinds {
			m := metrics[k.signals]
			row += fmt.Sprintf(" | %s | %s | %s", units(m[sc.key+"-WCU"]), units(m[sc.key+"-RCU"]), units(m[sc.key+"-requests"]))
		}
		m85 := metrics["85"]
		target := "reported"
		if sc.maxWCU > 0 {
			target = fmt.Sprintf("≤ %g WCU, ≤ %d RCU: %s", sc.maxWCU, maxRCU, verdict(m85[sc.key+"-WCU"] <= sc.maxWCU && m85[sc.key+"-RCU"] <= maxRCU))
		}
		fmt.Println(row + " | " + target + " |")
	}
	fmt.Println()
	fmt.Print("CPU time on this machine (a second run without the meter; warm functions), ")
	for i, k := range vehicleKinds {
		m := metrics[k.signals]
		if i > 0 {
			fmt.Print("; ")
		}
		fmt.Printf("%s signals: receiver %.1f ms per delivery, processor %.1f ms per VEHICLE_STATE event, %.1f per VEHICLE_ERROR, %.1f per duplicate, "+
			"%.1f archiving a record", k.signals, m["recv-cpu-us"]/1e3, m["stream-cpu-us"]/1e3, m["error-cpu-us"]/1e3, m["duplicate-cpu-us"]/1e3,
			m["archive-cpu-us"]/1e3)
	}
	fmt.Println(".")
	fmt.Println()

	prices, assume := cost.ListPrices(), cost.DefaultAssumptions()
	bills := map[string]cost.Bill{}
	for _, k := range vehicleKinds {
		bills[k.signals] = cost.Price(prices, assume, measured(metrics[k.signals]))
	}

	fmt.Println("### CloudWatch Logs per webhook")
	fmt.Println()
	fmt.Println("What both functions write to stdout (JSON log lines and EMF metric lines), measured, in bytes (lines):")
	fmt.Println()
	fmt.Println("| | 10 signals | 85 signals |")
	fmt.Println("|---|---|---|")
	logRow := func(name, key string) {
		row := "| " + name
		for _, k := range vehicleKinds {
			m := metrics[k.signals]
			row += fmt.Sprintf(" | %s (%g)", num(m[key+"-logB"]), m[key+"-loglines"])
		}
		fmt.Println(row + " |")
	}
	logRow("Receiver, per delivery", "recv")
	logRow("Processor, per steady VEHICLE_STATE event", "steady")
	logRow("Processor, per VEHICLE_ERROR", "error")
	logRow("Processor, per duplicate", "duplicate")
	fmt.Printf("| Lambda's START/END/REPORT, per invocation (the stack drops them: context lambdaSystemLogLevel=WARN) | %s (%g) | %s (%g) |\n",
		num(assume.PlatformLogBytes), assume.PlatformLogLines, num(assume.PlatformLogBytes), assume.PlatformLogLines)
	row := fmt.Sprintf("| **Per webhook**, %.2f deliveries, %g-record batches, +%g B per log event (goal ≤ 2 KB)", assume.DeliveriesPerEvent, assume.ProcessorBatch, assume.LogEventOverhead)
	for _, k := range vehicleKinds {
		q := line(bills[k.signals], "CloudWatch Logs ingestion").Quantity
		row += fmt.Sprintf(" | **%s**: %s", num(q), verdict(q <= 2048))
	}
	fmt.Println(row + " |")
	fmt.Println()

	fmt.Println("### Cost per million webhooks")
	fmt.Println()
	fmt.Printf("%s on-demand list prices checked %s (pkg/cost.ListPrices); free tiers left out. Mix: %.0f %% VEHICLE_STATE "+
		"(steady events changing 1–3 signals, and one vehicle's first event in every %g), %.0f %% VEHICLE_ERROR, %.2f deliveries "+
		"per event (the extra ones are duplicates at the processor).\n\n",
		prices.Region, prices.AsOf, 100*(1-assume.ErrorShare), assume.EventsPerVehicle, 100*assume.ErrorShare, assume.DeliveriesPerEvent)
	fmt.Println("| Line | 10 signals: per webhook | $ per million | 85 signals: per webhook | $ per million |")
	fmt.Println("|---|---|---|---|---|")
	for i, l := range bills["10"].Lines {
		row := "| " + l.Name
		for _, k := range vehicleKinds {
			l := bills[k.signals].Lines[i]
			row += fmt.Sprintf(" | %s %s | %s", quantity(l.Quantity), l.Unit, dollars(l.PerMillion))
		}
		fmt.Println(row + " |")
	}
	// Issue 11's goals are the pipeline's, issue 13's the archive's.
	pipelineTotal, archiveTotal := "| **Pipeline** (every line but the archive's and the domain events')", "| **Archive** (goal ≤ $0.75 for a 20 KB webhook)"
	busTotal := "| **Domain events** (the bus and its publisher)"
	total, dominant := "| **Total**", "| Dominant line"
	for _, k := range vehicleKinds {
		b := bills[k.signals]
		pipeline := b.Sum("")
		pipelineTotal += fmt.Sprintf(" | goal ≤ $%g | **%s**: %s", k.goal, dollars(pipeline), verdict(pipeline <= k.goal))
		m := metrics[k.signals]
		archiveTotal += fmt.Sprintf(" | %s B body, %s B entry | **%s**", num(m["body-B"]), num(m["archive-B"]), dollars(b.Sum(cost.PartArchive)))
		if m["body-B"] >= 15<<10 {
			archiveTotal += ": " + verdict(b.Sum(cost.PartArchive) <= 0.75)
		}
		busTotal += fmt.Sprintf(" | | **%s**", dollars(b.Sum(cost.PartBus)))
		total += fmt.Sprintf(" | | **%s**", dollars(b.Total))
		d := b.Dominant()
		dominant += fmt.Sprintf(" | %s | %.0f %%", d.Name, 100*d.PerMillion/b.Total)
	}
	fmt.Println(pipelineTotal + " |")
	fmt.Println(archiveTotal + " |")
	fmt.Println(busTotal + " |")
	fmt.Println(total + " |")
	fmt.Println(dominant + " |")
	// The total's sensitivity to first events: a fleet that churns, or a
	// vehicle that reports rarely, pays more of them.
	short := assume
	short.EventsPerVehicle = streamLength
	sensitivity := fmt.Sprintf("| If a vehicle sent only %d events (the stream above)", streamLength)
	for _, k := range vehicleKinds {
		sensitivity += fmt.Sprintf(" | | %s", dollars(cost.Price(prices, short, measured(metrics[k.signals])).Total))
	}
	fmt.Println(sensitivity + " |")
	fmt.Println()
	fmt.Println("Assumptions (pkg/cost.DefaultAssumptions):")
	fmt.Println()
	for _, a := range []string{
		fmt.Sprintf("memory %g MB for both functions (the stack's ReceiverMemoryMB and ProcessorMemoryMB); below %g MB Lambda gives a "+
			"fraction of a vCPU, so the CPU time measured here (on a whole core) is stretched ×%.1f", assume.ReceiverMemoryMB,
			assume.FullVCPUMemoryMB, assume.FullVCPUMemoryMB/assume.ReceiverMemoryMB),
		fmt.Sprintf("receiver duration: %v waiting on SendMessage + its measured CPU time; processor: %v per DynamoDB request "+
			"(measured count), %g records at a time (BATCH_CONCURRENCY), + its measured CPU time", assume.ReceiverWait,
			assume.DynamoDBWait, assume.BatchConcurrency),
		fmt.Sprintf("SQS: one SendMessage per delivery (per started 64 KB of message, measured size); the event source receives "+
			"batches of %g (a ReceiveMessage per started 64 KB of the batch) and deletes each batch in one DeleteMessageBatch; "+
			"its empty long polls are left out (a busy queue)", assume.ProcessorBatch),
		fmt.Sprintf("Lambda's own log lines: %g bytes per invocation: the stack's JSON log format at system level WARN drops "+
			"START, END and REPORT (with lambdaSystemLogLevel=INFO add ≈ 270 bytes, 3 lines, per invocation: ≈ $0.19 per million "+
			"webhooks); CloudWatch Logs counts %g bytes per log event besides its message; 1 GB = 2^30 bytes",
			assume.PlatformLogBytes, assume.LogEventOverhead),
		fmt.Sprintf("first events: a vehicle sends %g VEHICLE_STATE events in its life on the service, the first of which "+
			"stores every signal (the table's first row); the last row of the cost table prices the stream above instead",
			assume.EventsPerVehicle),
		fmt.Sprintf("Secrets Manager: %g warm receivers, each fetching the secret once per %v (SECRET_CACHE_TTL), at %g webhooks/s",
			assume.WarmReceivers, assume.SecretTTL, assume.WebhooksPerSecond),
		fmt.Sprintf("archive: every delivery the processor gets is one Firehose record (its entry, measured: the body gzipped with "+
			"its labels), billed in 5 KB increments; the processor's CPU time archiving it (measured alone, one PutRecordBatch per "+
			"record: dearer than a batch's share; the processor's own line leaves it out) and one %v PutRecordBatch wait per "+
			"invocation; Firehose writes an object per %v at %g webhooks/s (or per %g MiB); objects move to Intelligent-Tiering "+
			"at once and expire after %g days (30 days frequent, 60 infrequent, the rest archive instant access), their storage "+
			"for the whole retention charged to the webhook",
			assume.FirehoseWait, assume.ArchiveBufferInterval, assume.WebhooksPerSecond, assume.ArchiveBufferBytes/(1<<20), assume.ArchiveRetentionDays),
		fmt.Sprintf("domain events: as many per VEHICLE_STATE and per VEHICLE_ERROR as the events above made (derived from the state "+
			"table's stream, as the publisher derives them; none for duplicates), each under 64 KB (one EventBridge event); the publisher "+
			"is invoked once per %v batching window at %g webhooks/s and waits %v on PutEvents",
			assume.PublisherWindow, assume.WebhooksPerSecond, assume.PutEventsWait),
	} {
		fmt.Println("- " + a)
	}
	fmt.Println()
}

func line(b cost.Bill, name string) cost.Line {
	for _, l := range b.Lines {
		if l.Name == name {
			return l
		}
	}
	return cost.Line{}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// units formats capacity units and request counts: halves and means keep
// two decimals, whole numbers none.
func units(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprint(int64(v))
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func quantity(v float64) string {
	switch {
	case v >= 100:
		return num(v)
	case v >= 1:
		return units(v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

func dollars(v float64) string {
	if v < 0.01 {
		return fmt.Sprintf("$%.4f", v)
	}
	return fmt.Sprintf("$%.2f", v)
}
