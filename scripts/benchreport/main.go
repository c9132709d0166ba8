// Command benchreport runs the project's benchmarks and prints one report:
// the receiver core against the HMAC floor, the processor per event,
// DynamoDB requests per event, DynamoDB capacity units per event by
// scenario, logs per webhook and the cost per million webhooks, the
// reconciliation's capacity per vehicle and its schedule's cost, the Lambda
// binaries' sizes and init times, and the local pipeline's throughput and
// acknowledgement latency. `make bench` runs it; it needs Go, and moto for
// the sections against DynamoDB.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// result is one benchmark line: its name and metrics by unit.
type result struct {
	name    string
	metrics map[string]float64
}

func main() {
	fs := flag.NewFlagSet("benchreport", flag.ExitOnError)
	count := fs.Int("count", 3, "runs of each micro-benchmark (the median is reported)")
	costOnly := fs.Bool("cost", false, "only the DynamoDB capacity, logs and cost tables")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: benchreport [flags]\n\nRuns the benchmarks and prints a Markdown report. Progress goes to stderr.\n\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])

	if *costOnly {
		printCapacity(bench("-bench=Capacity", "-benchtime=1x", "./pkg/devstack"))
		printReconcile(bench("-bench=Reconcile", "-benchtime=1x", "./pkg/devstack"))
		return
	}
	micro := bench(fmt.Sprintf("-count=%d", *count), "-bench=.", "./pkg/receiver", "./pkg/processor")
	dynamo := bench("-bench=EventAgainstDynamoDB", "-benchtime=20x", "./pkg/dynamostore")
	capacity := bench("-bench=Capacity", "-benchtime=1x", "./pkg/devstack")
	reconciliation := bench("-bench=Reconcile", "-benchtime=1x", "./pkg/devstack")
	cold := bench("-bench=ColdStart", "-benchtime=20x", "./lambdas/receiver", "./lambdas/processor")
	pipeline := bench("-bench=Pipeline", "-benchtime=1x", "./pkg/devstack")
	sizes := armSizes()

	fmt.Printf("## Benchmark report\n\nMachine: %s, %d CPUs, %s/%s, %s. Micro-benchmarks: median of %d runs.\n\n",
		cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), *count)

	fmt.Println("### Receiver core (signed VEHICLE_STATE, in-memory queue) against the HMAC-SHA256 floor")
	fmt.Println()
	fmt.Println("| Body | Receiver ns/op | B/op | allocs/op | HMAC floor ns/op | Receiver / floor |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, size := range []string{"1KB", "16KB", "50KB"} {
		r := median(micro, "BenchmarkReceiver/"+size)
		f := median(micro, "BenchmarkHMACFloor/"+size)
		fmt.Printf("| %s | %s | %s | %s | %s | %.1f× |\n", size, num(r["ns/op"]), num(r["B/op"]), num(r["allocs/op"]), num(f["ns/op"]), r["ns/op"]/f["ns/op"])
	}
	env := median(micro, "BenchmarkParseEnvelope")
	fmt.Printf("\nEnvelope scan of the 50 KB body alone: %s ns/op (%.0f MB/s).\n\n", num(env["ns/op"]), env["MB/s"])

	fmt.Println("### Processor core per event (in-memory store)")
	fmt.Println()
	fmt.Println("| Event | ns/op | B/op | allocs/op | write requests/event |")
	fmt.Println("|---|---|---|---|---|")
	for _, n := range []string{"3", "85"} {
		r := median(micro, "BenchmarkProcessEvent/"+n+"signals")
		fmt.Printf("| %s signals | %s | %s | %s | %g |\n", n, num(r["ns/op"]), num(r["B/op"]), num(r["allocs/op"]), r["writes/event"])
	}
	d := median(dynamo, "BenchmarkEventAgainstDynamoDB")
	fmt.Printf("\nAgainst DynamoDB (moto, counted at the HTTP layer), one 85-signal event: %g write requests, %g read requests (%s ms per event, the emulator's time).\n\n",
		d["writes/event"], d["reads/event"], num(d["ns/op"]/1e6))

	printCapacity(capacity)
	printReconcile(reconciliation)

	fmt.Println("### Lambda binaries")
	fmt.Println()
	fmt.Println("| Function | bootstrap linux/arm64 (bytes) | init, process start to first request for work (ms, host build) |")
	fmt.Println("|---|---|---|")
	for _, fn := range []string{"receiver", "processor"} {
		c := find(cold, "lambdas/"+fn, "BenchmarkColdStart")
		fmt.Printf("| %s | %s | %.1f |\n", fn, num(sizes[fn]), c["ns/op"]/1e6)
	}

	p := median(pipeline, "BenchmarkPipeline")
	fmt.Printf("\n### Local pipeline over HTTP (moto)\n\n%g concurrent senders, signed VEHICLE_STATE deliveries: **%.0f acknowledgements/s**, "+
		"ack latency **p50 %.1f ms, p99 %.1f ms**; %.1f events/s fully processed. The emulator bounds these figures "+
		"(moto serves one DynamoDB request at a time and copies whole tables on every transaction); they are not AWS's.\n",
		p["senders"], p["acks/s"], p["p50-ack-ms"], p["p99-ack-ms"], p["processed/s"])
}

// bench runs go test benchmarks and returns their results, tagged with
// their package.
func bench(args ...string) []result {
	cmdArgs := append([]string{"test", "-run=^$", "-benchmem"}, args...)
	fmt.Fprintln(os.Stderr, "go", strings.Join(cmdArgs, " "))
	cmd := exec.Command("go", cmdArgs...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchreport: %v\n%s", err, out)
		os.Exit(1)
	}
	var results []result
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = rest
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		r := result{name: pkg + " " + strings.TrimSuffix(f[0], "-"+strconv.Itoa(runtime.GOMAXPROCS(0))), metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				r.metrics[f[i+1]] = v
			}
		}
		results = append(results, r)
	}
	return results
}

// median returns, per metric, the median over the results named name.
func median(results []result, name string) map[string]float64 {
	values := map[string][]float64{}
	for _, r := range results {
		if strings.HasSuffix(r.name, " "+name) {
			for k, v := range r.metrics {
				values[k] = append(values[k], v)
			}
		}
	}
	m := map[string]float64{}
	for k, vs := range values {
		for i := range vs { // insertion sort: a handful of values
			for j := i; j > 0 && vs[j] < vs[j-1]; j-- {
				vs[j], vs[j-1] = vs[j-1], vs[j]
			}
		}
		m[k] = vs[len(vs)/2]
	}
	return m
}

func find(results []result, pkgSuffix, name string) map[string]float64 {
	for _, r := range results {
		pkg, bench, _ := strings.Cut(r.name, " ")
		if strings.HasSuffix(pkg, pkgSuffix) && bench == name {
			return r.metrics
		}
	}
	return map[string]float64{}
}

// armSizes builds the deployable binaries and returns their sizes.
func armSizes() map[string]float64 {
	cmd := exec.Command("make", "--no-print-directory", "build")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport: make build:", err)
		os.Exit(1)
	}
	sizes := map[string]float64{}
	for _, fn := range []string{"receiver", "processor"} {
		if info, err := os.Stat("bin/" + fn + "/bootstrap"); err == nil {
			sizes[fn] = float64(info.Size())
		}
	}
	return sizes
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// num formats a number with thin grouping for reading.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	if v < 100 && v != float64(int64(v)) {
		s = strconv.FormatFloat(v, 'f', 1, 64)
	}
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 && !strings.Contains(s, ".") {
			out = append(out, ' ')
		}
		out = append(out, c)
	}
	return string(out)
}
