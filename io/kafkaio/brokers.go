package kafkaio

import "strings"

// ParseBrokers parses a comma-separated Kafka broker list, as the
// --kafka-brokers flags take it: each host:port trimmed of spaces, empty
// entries (a trailing comma) left out.
func ParseBrokers(list string) []string {
	var brokers []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return brokers
}
