package functions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"
)

// FailInit reports an init failure and exits: to stderr (CloudWatch Logs)
// and, when running under Lambda, to the Runtime API's init error endpoint,
// so the failed invocation says why instead of a bare exit status.
func FailInit(function string, err error) {
	fmt.Fprintf(os.Stderr, "%s: init failed: %v\n", function, err)
	if api := os.Getenv("AWS_LAMBDA_RUNTIME_API"); api != "" {
		body, _ := json.Marshal(map[string]any{"errorMessage": err.Error(), "errorType": "Runtime.InitError"})
		req, reqErr := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
		if reqErr == nil {
			req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
			client := &http.Client{Timeout: 2 * time.Second}
			if resp, postErr := client.Do(req); postErr == nil {
				resp.Body.Close()
			}
		}
	}
	os.Exit(1)
}
