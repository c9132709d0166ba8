package vehicle

import "strings"

// EntryChange is how one stored entry of a vehicle changed: a record of
// the state table's stream. Exactly one of Signal, Error and Details is
// set. Old is nil for an entry just created, New for one removed.
type EntryChange struct {
	VehicleID string
	Signal    *SignalChange
	Error     *ErrorChange
	Details   *DetailsChange
}

// SignalChange is a signal entry's change.
type SignalChange struct {
	Code     string
	Old, New *Signal
}

// ErrorChange is an error entry's change; Key is the entry's ErrorKey.
type ErrorChange struct {
	Key      string
	Old, New *Error
}

// DetailsChange is the vehicle entry's change: make, model, year, user,
// mode.
type DetailsChange struct {
	Old, New *Details
}

// AsksReauth reports whether the error, while unresolved, asks the user to
// re-authenticate (what State.NeedsReauth derives from).
func (e Error) AsksReauth() bool {
	return e.Type == "PERMISSION" || e.Code == "PERMISSION" || strings.EqualFold(e.ResolutionType, "REAUTHENTICATE")
}
