package awstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildBootstrap builds the Lambda in dir for this machine, with the flags
// `make build` uses, and returns the binary's path and size.
func BuildBootstrap(tb testing.TB, dir string) (path string, size int64) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", path, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", dir, err, out)
	}
	info, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return path, info.Size()
}

// LambdaEnv is the environment Lambda gives a function, pointed at the
// emulator and at api, plus extra.
func LambdaEnv(tb testing.TB, api *RuntimeAPI, function string, extra map[string]string) []string {
	env := []string{
		"AWS_LAMBDA_RUNTIME_API=" + api.Addr(),
		"AWS_LAMBDA_FUNCTION_NAME=" + function,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_ENDPOINT_URL=" + Endpoint(tb),
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"TZ=UTC",
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}
