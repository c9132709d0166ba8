// Package functions builds each Lambda's handler from its environment
// variables and an AWS config: the one place that wires the receiver and
// the processor. The Lambdas' main packages call it with the process
// environment; the local stack (`make dev`) and the tools call it with the
// emulator's, so every runtime shares the same settings and code.
package functions
