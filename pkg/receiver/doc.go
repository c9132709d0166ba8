// Package receiver is the webhook receiver's core: it routes a request,
// checks its size and SC-Signature, answers VERIFY challenges, and persists
// every other genuine event to a queue before acknowledging it.
//
// It knows nothing of API Gateway, SQS or Secrets Manager: those reach it
// through Request, Queue and TokenSource, and adapters in sibling packages
// provide them.
package receiver
