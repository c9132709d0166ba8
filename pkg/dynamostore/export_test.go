package dynamostore

// EncodeLegacy encodes a vehicle as a legacy item at version, in the
// format stacks deployed before the entry layout hold.
var EncodeLegacy = encodeVehicle
