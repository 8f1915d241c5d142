package streaming

import (
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/io/kinesisio"
)

func init() {
	register.Function1x1(kafkaValue)
	register.Function1x1(kinesisData)
}

// KafkaTopic is the Kafka topic of a table: <prefix>.<table>.
func KafkaTopic(prefix, table string) string { return prefix + "." + table }

// KinesisStream is the Kinesis stream of a table: streaming-<prefix>-<table>.
func KinesisStream(prefix, table string) string { return "streaming-" + prefix + "-" + table }

// KafkaSource reads each table from its topic on the brokers; the records'
// timestamps are their event times.
func KafkaSource(brokers []string, prefix string, opts ...kafkaio.ReadOptionFn) Source {
	return func(s beam.Scope, table string) beam.PCollection {
		recs := kafkaio.Read(s, brokers, []string{KafkaTopic(prefix, table)}, opts...)
		return beam.ParDo(s, kafkaValue, recs)
	}
}

// KafkaDurableSource is KafkaSource that also gives the records' spans of
// offsets, for durable positions (give kafkaio.ReadDurablePositions among opts).
func KafkaDurableSource(brokers []string, prefix string, opts ...kafkaio.ReadOptionFn) DurableSource {
	return DurableSource{Store: KafkaPositions, Read: func(s beam.Scope, table string) (beam.PCollection, beam.PCollection) {
		recs := kafkaio.Read(s, brokers, []string{KafkaTopic(prefix, table)}, opts...)
		return beam.ParDo(s, kafkaValue, recs), beam.ParDo(s, kafkaSourceRecord, recs)
	}}
}

// KinesisSource reads each table from its stream; the records' arrival
// times are their event times.
func KinesisSource(prefix string, opts ...kinesisio.ReadOptionFn) Source {
	return func(s beam.Scope, table string) beam.PCollection {
		recs := kinesisio.Read(s, KinesisStream(prefix, table), opts...)
		return beam.ParDo(s, kinesisData, recs)
	}
}

// KinesisDurableSource is KinesisSource that also gives the records' spans
// of sequence numbers, for durable positions (give
// kinesisio.ReadDurablePositions among opts).
func KinesisDurableSource(prefix string, opts ...kinesisio.ReadOptionFn) DurableSource {
	return DurableSource{Store: KinesisPositions, Read: func(s beam.Scope, table string) (beam.PCollection, beam.PCollection) {
		recs := kinesisio.Read(s, KinesisStream(prefix, table), opts...)
		return beam.ParDo(s, kinesisData, recs), beam.ParDo(s, kinesisSourceRecord, recs)
	}}
}

func kafkaValue(r kafkaio.Record) []byte { return r.Value }

func kinesisData(r kinesisio.Record) []byte { return r.Data }
