// Package smartcar holds the Smartcar webhook protocol: the SC-Signature
// scheme, the VERIFY challenge, the Application Management Token secret format
// and a tolerant reader of the event envelope.
//
// It has no AWS dependencies. The facts it encodes, and where Smartcar's
// documentation and real traffic disagree, are described in the README.
package smartcar
