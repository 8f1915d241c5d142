package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// This file maps Kafka's errors to the REST Proxy's error codes and
// answers.

// The REST Proxy's error codes (kafka-rest's Errors and rest-utils'
// KafkaExceptionMapper): the HTTP status times 100 plus a detail.
const (
	codeTopicNotFound     = 40401
	codePartitionNotFound = 40402
	codeKafkaAuthn        = 40101
	codeKafkaAuthz        = 40301
	codeKafkaError        = 50002
	codeKafkaRetriable    = 50003
	msgTopicNotFound      = "Topic not found."
	msgPartitionNotFound  = "Partition not found."
	msgUnsupportedMedia   = "HTTP 415 Unsupported Media Type"
)

// kafkaErrorCode maps a producer error to the REST Proxy's per-record code.
func kafkaErrorCode(err error) int {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return codeTopicNotFound
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return codeKafkaAuthz
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return codeKafkaAuthn
	case kerr.IsRetriable(err), errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, kgo.ErrRecordRetries),
		errors.Is(err, kgo.ErrClientClosed), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return codeKafkaRetriable
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return codeKafkaRetriable
	}
	return codeKafkaError
}

// kafkaUnavailable answers a request that needs Kafka while no broker
// answers: 503 with Retry-After, and the REST Proxy's code for a retriable
// Kafka error.
func (s *Server) kafkaUnavailable(w *respWriter) {
	w.errKind, w.sampled = errBackend, true
	w.Header().Set("Retry-After", "1")
	s.fail(w, http.StatusServiceUnavailable, codeKafkaRetriable,
		fmt.Sprintf("Kafka is unavailable: no broker has answered for %v; retry later", s.cfg.KafkaUnavailableAfter), "")
}

// kafkaFailure answers a failed metadata call.
func (s *Server) kafkaFailure(w *respWriter, err error) {
	if s.health.isDown() {
		s.kafkaUnavailable(w)
		return
	}
	code := kafkaErrorCode(err)
	status := code / 100
	if code == codeKafkaRetriable || code == codeKafkaError {
		status = http.StatusInternalServerError
	}
	w.errKind = errBackend
	s.fail(w, status, code, "Kafka error: "+err.Error(), "")
}
