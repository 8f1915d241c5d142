package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps how long a Retry-After header can make us wait.
const maxRetryAfter = 30 * time.Second

// sender sends requests to the gateway with bounded retries.
type sender struct {
	client         *http.Client
	apiKey         string
	maxAttempts    int
	baseBackoff    time.Duration
	maxBackoff     time.Duration
	requestTimeout time.Duration
	log            *slog.Logger
	// attempted, when set, learns every attempt's outcome.
	attempted func(err error)
}

// send delivers r, retrying transient failures (connection errors, 408,
// 429 and 5xx answers, records the REST Proxy says are retriable) up to
// maxAttempts in all, with exponential backoff and full jitter, or longer
// when the gateway says Retry-After. It returns how many times it re-sent
// the request and, when it gave up, why. ctx ending stops the retries.
func (s *sender) send(ctx context.Context, r *request) (retries int, err error) {
	for attempt := 1; ; attempt++ {
		retriable, after, err := s.attempt(ctx, r)
		if s.attempted != nil {
			s.attempted(err)
		}
		if err == nil {
			return retries, nil
		}
		if !retriable {
			return retries, err
		}
		if attempt >= s.maxAttempts {
			return retries, fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		if ctx.Err() != nil {
			return retries, fmt.Errorf("%w (interrupted: %v)", err, context.Cause(ctx))
		}
		wait := s.backoff(attempt, after)
		s.log.Debug("emulator: retrying", "table", r.table, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return retries, fmt.Errorf("%w (interrupted before retrying: %v)", err, context.Cause(ctx))
		case <-t.C:
		}
		retries++
	}
}

// backoff is the wait before the attempt after attempt: uniformly random
// in [0, min(maxBackoff, baseBackoff·2^(attempt-1))] ("full jitter", so
// that many senders failing together do not retry together), but at least
// what the gateway asked for in Retry-After.
func (s *sender) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceil := s.maxBackoff
	if attempt-1 < 62 && s.baseBackoff <= s.maxBackoff>>(attempt-1) {
		ceil = s.baseBackoff << (attempt - 1)
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	return max(d, min(retryAfter, maxRetryAfter))
}

// attempt sends r once. retriable says whether a failure is worth another
// try; retryAfter is the gateway's Retry-After, if it sent one.
func (s *sender) attempt(ctx context.Context, r *request) (retriable bool, retryAfter time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, s.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		return false, 0, fmt.Errorf("%s %s: %w", r.method, r.url, err)
	}
	req.Header.Set("Content-Type", r.contentType)
	if r.kafka {
		req.Header.Set("Accept", "application/vnd.kafka.v2+json, application/json")
	}
	if s.apiKey != "" {
		req.Header.Set("x-api-key", s.apiKey)
	}
	res, err := s.client.Do(req)
	if err != nil {
		// Connection refused or reset, a timeout: worth another try, unless
		// we are stopping.
		return ctx.Err() == nil, 0, fmt.Errorf("%s %s: %w", r.method, r.url, err)
	}
	body, readErr := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20)) // so the connection can be reused
	res.Body.Close()

	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		if readErr != nil {
			// The answer was cut off: the record may or may not be in, and
			// a duplicate is harmless (the pipelines deduplicate).
			return true, 0, fmt.Errorf("%s %s: reading the answer: %w", r.method, r.url, readErr)
		}
		if r.kafka {
			return kafkaRecordErrors(r, body)
		}
		return false, 0, nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return true, parseRetryAfter(res.Header.Get("Retry-After")), statusError(r, res.Status, body)
	default:
		return false, 0, statusError(r, res.Status, body)
	}
}

// kafkaRecordErrors reads a REST Proxy produce answer: a 200 can still
// carry per-record errors (error_code 2 is retriable, 1 is not).
func kafkaRecordErrors(r *request, body []byte) (retriable bool, _ time.Duration, err error) {
	var resp struct {
		Offsets []struct {
			ErrorCode *int    `json:"error_code"`
			Error     *string `json:"error"`
		} `json:"offsets"`
	}
	if json.Unmarshal(body, &resp) != nil {
		return false, 0, nil // not a REST Proxy answer; the status said yes
	}
	for _, o := range resp.Offsets {
		if o.ErrorCode != nil && *o.ErrorCode != 0 {
			msg := ""
			if o.Error != nil {
				msg = *o.Error
			}
			return *o.ErrorCode == 2 || *o.ErrorCode == 50003, 0,
				fmt.Errorf("%s %s: record not written: error_code %d: %s", r.method, r.url, *o.ErrorCode, msg)
		}
	}
	return false, 0, nil
}

func statusError(r *request, status string, body []byte) error {
	const maxShown = 300
	shown := strings.TrimSpace(string(body))
	if len(shown) > maxShown {
		shown = shown[:maxShown] + "..."
	}
	return &StatusError{Method: r.method, URL: r.url, Status: status, Body: shown}
}

// StatusError is a gateway answer that was not a success.
type StatusError struct {
	Method, URL, Status string
	// Body is the start of the answer's body.
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %s: %s", e.Method, e.URL, e.Status, e.Body)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}
