package domainevents

import (
	"embed"
	"path"
)

// files holds each detail-type's JSON Schema, schemas/<detail-type>.schema.json,
// and an example event of it, examples/<detail-type>.json.
//
//go:embed schemas/*.schema.json examples/*.json
var files embed.FS

// Schemas returns the JSON Schema (draft 2020-12) of each detail-type's
// detail, by detail-type.
func Schemas() map[string][]byte {
	return read("schemas", ".schema.json")
}

// Examples returns an example of each detail-type, by detail-type: the
// whole event as an EventBridge target receives it, whose detail Derive
// made (the package's tests check it).
func Examples() map[string][]byte {
	return read("examples", ".json")
}

// read returns dir/<detail-type><suffix> of each detail-type.
func read(dir, suffix string) map[string][]byte {
	m := make(map[string][]byte, len(DetailTypes()))
	for _, t := range DetailTypes() {
		b, err := files.ReadFile(path.Join(dir, t+suffix))
		if err != nil {
			panic(err) // a file the package embeds: its tests check each is there
		}
		m[t] = b
	}
	return m
}
