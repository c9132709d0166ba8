package functions

import (
	"os"
	"testing"

	"github.com/smartcar-webhook-receiver/smartcar-webhook-receiver/pkg/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }
