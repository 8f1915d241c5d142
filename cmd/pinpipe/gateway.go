package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/io/kafkaio"
)

func init() {
	addCommand("gateway", "serve the REST Proxy (Kafka) and Kinesis proxy APIs", gatewayCmd)
}

func gatewayCmd(fs *flag.FlagSet) func(context.Context) error {
	var (
		cfg        gateway.Config
		brokers    string
		apiKeyEnvs []string
		kinesisOn  string
	)
	fs.StringVar(&cfg.Listen, "listen", gateway.DefaultListen, "address to listen on (loopback by default: to expose it, use --tls-cert/--tls-key or a TLS proxy in front)")
	fs.StringVar(&brokers, "kafka-brokers", "", "comma-separated Kafka seed brokers (host:port); empty turns the /topics routes off")
	fs.StringVar(&cfg.TopicPrefix, "topic-prefix", "", "if set, serve only the topics <prefix>.* and the streams streaming-<prefix>-*")
	fs.BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", false, "let the brokers create a topic on its first record (if they allow it: auto.create.topics.enable), "+
		"as a stock REST Proxy does; default: a produce to a topic that does not exist is 404, error_code 40401, so a mistyped topic is an error, not a new topic")
	fs.Func("api-key-env", "name of an environment `variable` holding an API key that clients must send as x-api-key; repeat it (or separate names with commas) for several keys, to rotate them", func(v string) error {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				apiKeyEnvs = append(apiKeyEnvs, name)
			}
		}
		return nil
	})
	fs.StringVar(&cfg.APIKeysFile, "api-keys-file", "", "file of API keys, one a line (# comments allowed), read again on SIGHUP")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 0, "requests a second each API key may send (the whole gateway's without keys); 0: no limit; past it 429 with Retry-After")
	fs.IntVar(&cfg.RateBurst, "rate-burst", 0, "bursts the rate limit allows (default: --rate-limit rounded up)")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", gateway.DefaultMaxInFlight, "requests served at once; past it 429 with Retry-After")
	fs.Int64Var(&cfg.MaxBodyBytesInFlight, "max-body-bytes-in-flight", gateway.DefaultMaxBodyBytesInFlight, "bytes of request bodies read and served at once; past it 429 with Retry-After")
	fs.IntVar(&cfg.MaxConns, "max-conns", gateway.DefaultMaxConns, "open client connections; past it new ones get a 503 and are closed")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate file: serve HTTPS (with --tls-key); read again on SIGHUP")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key file for --tls-cert")
	fs.IntVar(&cfg.MaxRecordsPerRequest, "max-records", gateway.DefaultMaxRecordsPerRequest, "records in one REST Proxy produce request")
	fs.IntVar(&cfg.MaxKafkaRecordBytes, "max-record-bytes", gateway.DefaultMaxKafkaRecordBytes, "bytes of one Kafka record (key plus value): keep it under the brokers' max.message.bytes")
	fs.IntVar(&cfg.MaxJSONDepth, "max-json-depth", gateway.DefaultMaxJSONDepth, "nesting of a record's JSON")
	fs.IntVar(&cfg.MaxNumberChars, "max-number-chars", gateway.DefaultMaxNumberChars, "characters of a number in a record's JSON")
	fs.DurationVar(&cfg.KafkaUnavailableAfter, "kafka-unavailable-after", gateway.DefaultKafkaUnavailableAfter, "once no Kafka broker has answered for this long, produce requests get 503 at once instead of waiting out --backend-timeout")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", gateway.DefaultReadHeaderTimeout, "time a client has to send a request's headers")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", gateway.DefaultReadTimeout, "time a client has to send a whole request")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", 0, "time to write an answer (default --backend-timeout plus 10 s)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", gateway.DefaultIdleTimeout, "how long an idle keep-alive connection stays open")
	fs.StringVar(&kinesisOn, "kinesis", "auto", "the /streams routes: on, off, or auto (on when an AWS region is configured); Kinesis settings come from the AWS SDK's (AWS_REGION, AWS_ENDPOINT_URL_KINESIS, credentials chain)")
	streamAdmin := fs.Bool("stream-admin", true, "serve POST and DELETE /streams/{name} (stream creation and deletion); false leaves clients only the record routes and reads")
	fs.DurationVar(&cfg.BackendTimeout, "backend-timeout", gateway.DefaultBackendTimeout, "how long a request waits for Kafka or Kinesis")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", gateway.DefaultMaxBodyBytes, "largest request body accepted")
	return func(ctx context.Context) error {
		cfg.KafkaBrokers = kafkaio.ParseBrokers(brokers)
		// A shutdown waits for the requests in flight as long as a drain
		// may take (--drain-timeout, defined once for every command).
		cfg.ShutdownTimeout = drainTimeout
		for _, name := range apiKeyEnvs {
			key := os.Getenv(name)
			if key == "" {
				return usageErrorf("--api-key-env=%s: that environment variable is empty or unset", name)
			}
			cfg.APIKeys = append(cfg.APIKeys, key)
		}
		cfg.ReloadOnSIGHUP = cfg.TLSCertFile != "" || cfg.APIKeysFile != ""
		cfg.NoStreamAdmin = !*streamAdmin
		kinesisNote := ""
		switch kinesisOn {
		case "on", "auto":
			awsCfg, err := config.LoadDefaultConfig(ctx)
			if err != nil {
				return fmt.Errorf("AWS configuration: %w", err)
			}
			if awsCfg.Region == "" {
				if kinesisOn == "on" {
					return usageErrorf("--kinesis=on needs an AWS region: set AWS_REGION")
				}
				kinesisNote = "Kinesis off: no AWS region (set AWS_REGION)"
				break
			}
			cfg.Kinesis = kinesis.NewFromConfig(awsCfg)
		case "off":
		default:
			return usageErrorf("--kinesis must be on, off or auto, not %q", kinesisOn)
		}
		cfg.Registry = promRegistry // the process's one registry, served at the gateway's /metrics
		srv, err := gateway.New(cfg)
		if err != nil {
			return err
		}
		backends := []string{}
		if len(cfg.KafkaBrokers) > 0 {
			backends = append(backends, "Kafka at "+strings.Join(cfg.KafkaBrokers, ","))
		}
		if cfg.Kinesis != nil {
			backends = append(backends, "Kinesis in "+cfg.Kinesis.Options().Region)
		} else if kinesisNote != "" {
			backends = append(backends, kinesisNote)
		}
		scheme := "http"
		if cfg.TLSCertFile != "" {
			scheme = "https"
		}
		if cfg.APIKeysFile != "" || len(cfg.APIKeys) > 0 {
			backends = append(backends, "API keys required")
		}
		note("pinpipe gateway: listening on %s://%s (%s); Ctrl-C stops it after the requests in flight",
			scheme, cfg.Listen, strings.Join(backends, ", "))
		return srv.ListenAndServe(ctx)
	}
}
