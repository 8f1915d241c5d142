package kafkaio

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

type writeOption struct {
	Compression string
}

// WriteOptionFn configures Write.
type WriteOptionFn func(*writeOption) error

// WriteCompression sets the compression of produced batches: none, gzip,
// snappy, lz4 or zstd. Default: franz-go's (snappy).
func WriteCompression(codec string) WriteOptionFn {
	return func(o *writeOption) error {
		if _, err := compressionCodec(codec); err != nil {
			return err
		}
		o.Compression = codec
		return nil
	}
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown compression %q", name)
}
