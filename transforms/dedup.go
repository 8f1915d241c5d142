package transforms

import (
	"bytes"
	"encoding/gob"
)

func encodePartials(v Partials) ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(v)
	return buf.Bytes(), err
}

// decodePartials decodes into fresh maps, so that a decoded accumulator can
// be merged into (gob leaves empty maps nil).
func decodePartials(b []byte) (Partials, error) {
	p := NewPartials()
	err := gob.NewDecoder(bytes.NewReader(b)).Decode(p)
	return *p, err
}
