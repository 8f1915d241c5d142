package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file answers the REST Proxy's topic metadata routes (GET /topics and
// GET /topics/{topic}) and decides which topics the gateway serves.

// kafkaMaxTopicNameBytes is the longest topic name Kafka allows.
const kafkaMaxTopicNameBytes = 249

// validTopic reports whether name is a legal Kafka topic name.
func validTopic(name string) bool { return validName(name, kafkaMaxTopicNameBytes) }

// validName is the rule Kafka topic and Kinesis stream names share: 1 to
// maxLen characters of [a-zA-Z0-9._-], and not "." or "..".
func validName(name string, maxLen int) bool {
	if name == "" || len(name) > maxLen || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// topicAllowed reports whether the gateway serves this topic: a legal name
// and, with a prefix, one of the prefix's topics.
func (s *Server) topicAllowed(name string) bool {
	if !validTopic(name) {
		return false
	}
	return s.cfg.TopicPrefix == "" || strings.HasPrefix(name, s.cfg.TopicPrefix+".")
}

// topicMetadata asks the brokers about one topic, or about all of them when
// topic is "". It never creates topics.
func (s *Server) topicMetadata(ctx context.Context, topic string, autoCreate bool) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	if topic != "" {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, t)
	}
	req.AllowAutoTopicCreation = autoCreate
	return req.RequestWith(ctx, s.kafka)
}

// partitionCount returns a topic's partition count, or the error to answer.
// With Config.AutoCreateTopics, like the Java producer's metadata lookup, it
// lets brokers that create topics on first use create this one.
func (s *Server) partitionCount(ctx context.Context, topic string) (n int32, status, code int, msg string) {
	resp, err := s.topicMetadata(ctx, topic, s.cfg.AutoCreateTopics)
	if err != nil {
		c := kafkaErrorCode(err)
		return 0, http.StatusInternalServerError, c, "Kafka error: " + err.Error()
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if len(t.Partitions) > 0 {
			return int32(len(t.Partitions)), 0, 0, ""
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return 0, http.StatusInternalServerError, kafkaErrorCode(err), "Kafka error: " + err.Error()
		}
	}
	return 0, http.StatusNotFound, codeTopicNotFound, msgTopicNotFound
}

// listTopics handles GET /topics: the topic names, internal ones left out,
// as the REST Proxy lists them.
func (s *Server) listTopics(w *respWriter, r *http.Request) {
	if s.health.isDown() {
		s.kafkaUnavailable(w)
		return
	}
	ctx, cancel := s.kafkaCtx(r.Context())
	defer cancel()
	resp, err := s.topicMetadata(ctx, "", false)
	if err != nil {
		s.kafkaFailure(w, err)
		return
	}
	names := []string{}
	for _, t := range resp.Topics {
		if t.Topic == nil || t.IsInternal || t.ErrorCode != 0 || !s.topicAllowed(*t.Topic) {
			continue
		}
		names = append(names, *t.Topic)
	}
	slices.Sort(names)
	writeKafkaJSON(w, http.StatusOK, names)
}

type topicReplica struct {
	Broker int32 `json:"broker"`
	Leader bool  `json:"leader"`
	InSync bool  `json:"in_sync"`
}

type topicPartition struct {
	Partition int32          `json:"partition"`
	Leader    int32          `json:"leader"`
	Replicas  []topicReplica `json:"replicas"`
}

type topicResponse struct {
	Name       string             `json:"name"`
	Configs    map[string]*string `json:"configs"`
	Partitions []topicPartition   `json:"partitions"`
}

// getTopic handles GET /topics/{topic}: name, configs and partitions with
// their replicas, in the REST Proxy's shape.
func (s *Server) getTopic(w *respWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if !s.topicAllowed(topic) {
		s.fail(w, http.StatusNotFound, codeTopicNotFound, msgTopicNotFound, "")
		return
	}
	if s.health.isDown() {
		s.kafkaUnavailable(w)
		return
	}
	ctx, cancel := s.kafkaCtx(r.Context())
	defer cancel()
	resp, err := s.topicMetadata(ctx, topic, false)
	if err != nil {
		s.kafkaFailure(w, err)
		return
	}
	var md *kmsg.MetadataResponseTopic
	for i := range resp.Topics {
		if t := &resp.Topics[i]; t.Topic != nil && *t.Topic == topic {
			md = t
		}
	}
	if md == nil || errors.Is(kerr.ErrorForCode(md.ErrorCode), kerr.UnknownTopicOrPartition) {
		s.fail(w, http.StatusNotFound, codeTopicNotFound, msgTopicNotFound, "")
		return
	}
	if err := kerr.ErrorForCode(md.ErrorCode); err != nil && len(md.Partitions) == 0 {
		s.kafkaFailure(w, err)
		return
	}
	out := topicResponse{Name: topic, Configs: map[string]*string{}, Partitions: []topicPartition{}}
	for _, p := range md.Partitions {
		tp := topicPartition{Partition: p.Partition, Leader: p.Leader, Replicas: []topicReplica{}}
		for _, b := range p.Replicas {
			tp.Replicas = append(tp.Replicas, topicReplica{Broker: b, Leader: b == p.Leader, InSync: slices.Contains(p.ISR, b)})
		}
		out.Partitions = append(out.Partitions, tp)
	}
	slices.SortFunc(out.Partitions, func(a, b topicPartition) int { return int(a.Partition - b.Partition) })

	dreq := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeTopic
	res.ResourceName = topic
	dreq.Resources = append(dreq.Resources, res)
	dresp, err := dreq.RequestWith(ctx, s.kafka)
	if err != nil {
		s.kafkaFailure(w, err)
		return
	}
	for _, rr := range dresp.Resources {
		if err := kerr.ErrorForCode(rr.ErrorCode); err != nil {
			s.kafkaFailure(w, err)
			return
		}
		for _, c := range rr.Configs {
			out.Configs[c.Name] = c.Value
		}
	}
	writeKafkaJSON(w, http.StatusOK, out)
}
