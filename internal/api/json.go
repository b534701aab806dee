package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// maxBody bounds every request body: the API takes small JSON objects, and
// an unbounded body would let any client exhaust memory.
const maxBody = 1 << 20

// decode reads one JSON object into v: at most maxBody bytes, no unknown
// fields, nothing after it.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return errorf(http.StatusBadRequest, CodeBadRequest, "the request body must hold exactly one JSON object")
	}
	return nil
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "the request body is larger than 1 MiB; send a smaller one")
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, CodeBadRequest, "the request body is empty; send a JSON object (see docs/api.md)")
	}
	return errorf(http.StatusBadRequest, CodeBadRequest, "the request body is not valid JSON for this endpoint: %v (see docs/api.md)", err)
}
