package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// This file reads request bodies within the gateway's limits and counts
// the requests and body bytes in flight.

// readBody reads the request body up to MaxBodyBytes into a pooled buffer,
// which the caller gives back with releaseBody when done with the body. On
// failure it has answered already (413 or 400) and returns ok=false.
func (s *Server) readBody(w *respWriter, r *http.Request) (body []byte, buf *[]byte, ok bool) {
	buf, _ = s.bufs.Get().(*[]byte)
	if buf == nil {
		b := make([]byte, 0, 4096)
		buf = &b
	}
	b := (*buf)[:0]
	var rd io.Reader = r.Body
	if n := r.ContentLength; n >= 0 && n <= s.cfg.MaxBodyBytes {
		// net/http reads no more than the announced length: no limit
		// reader needed.
		if !s.reserveBody(w, n) {
			s.releaseBody(buf)
			return nil, nil, false
		}
		if int64(cap(b)) <= n { // one more byte, to read the EOF into
			b = make([]byte, 0, n+1)
		}
	} else {
		rd = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
			if !s.reserveBody(w, int64(cap(b))-w.bodyBytes) {
				*buf = b
				s.releaseBody(buf)
				return nil, nil, false
			}
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*buf = b
			s.releaseBody(buf)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.fail(w, http.StatusRequestEntityTooLarge, 413,
					fmt.Sprintf("request body is larger than the gateway's limit of %d bytes", s.cfg.MaxBodyBytes), "ValidationException")
			} else {
				s.fail(w, http.StatusBadRequest, 400, "reading the request body: "+err.Error(), "SerializationException")
			}
			return nil, nil, false
		}
	}
	*buf = b
	if !s.admit(w) {
		s.releaseBody(buf)
		return nil, nil, false
	}
	return b, buf, true
}

// admit counts a request in flight, or answers 429 if the gateway serves
// MaxInFlight already.
func (s *Server) admit(w *respWriter) bool {
	if s.serving.Add(1) > int64(s.cfg.MaxInFlight) {
		s.serving.Add(-1)
		s.throttle(w, time.Second, fmt.Sprintf("Too many requests: the gateway is serving its limit of %d at once; retry later", s.cfg.MaxInFlight))
		return false
	}
	w.admitted = true
	return true
}

// reserveBody counts n more bytes of request bodies in flight, or answers
// 429 if that would pass MaxBodyBytesInFlight.
func (s *Server) reserveBody(w *respWriter, n int64) bool {
	if n <= 0 {
		return true
	}
	if s.bodyBytes.Add(n) > s.cfg.MaxBodyBytesInFlight {
		s.bodyBytes.Add(-n)
		s.throttle(w, time.Second, fmt.Sprintf("Too many requests: the gateway is reading its limit of %d bytes of request bodies at once; retry later",
			s.cfg.MaxBodyBytesInFlight))
		return false
	}
	w.bodyBytes += n
	return true
}

// releaseBody gives a body's buffer back to the pool, unless it grew large.
func (s *Server) releaseBody(buf *[]byte) {
	if cap(*buf) <= 1<<20 {
		*buf = (*buf)[:0]
		s.bufs.Put(buf)
	}
}
