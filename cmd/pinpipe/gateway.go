package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pinpipe/pinpipe/ingest/gateway"
)

func init() {
	addCommand("gateway", "serve the REST Proxy (Kafka) and Kinesis proxy APIs", gatewayCmd)
}

func gatewayCmd(fs *flag.FlagSet) func(context.Context) error {
	var (
		cfg       gateway.Config
		brokers   string
		apiKeyEnv string
		kinesisOn string
	)
	fs.StringVar(&cfg.Listen, "listen", gateway.DefaultListen, "address to listen on (loopback by default: put a TLS proxy in front to expose it)")
	fs.StringVar(&brokers, "kafka-brokers", "", "comma-separated Kafka seed brokers (host:port); empty turns the /topics routes off")
	fs.StringVar(&cfg.TopicPrefix, "topic-prefix", "", "if set, serve only the topics <prefix>.* and the streams streaming-<prefix>-*")
	fs.StringVar(&apiKeyEnv, "api-key-env", "", "name of an environment variable holding the API key that clients must send as x-api-key")
	fs.StringVar(&kinesisOn, "kinesis", "auto", "the /streams routes: on, off, or auto (on when an AWS region is configured); Kinesis settings come from the AWS SDK's (AWS_REGION, AWS_ENDPOINT_URL_KINESIS, credentials chain)")
	fs.DurationVar(&cfg.BackendTimeout, "backend-timeout", 30*time.Second, "how long a request waits for Kafka or Kinesis")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for requests in flight")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", 10<<20, "largest request body accepted")
	return func(ctx context.Context) error {
		for _, b := range strings.Split(brokers, ",") {
			if b = strings.TrimSpace(b); b != "" {
				cfg.KafkaBrokers = append(cfg.KafkaBrokers, b)
			}
		}
		if apiKeyEnv != "" {
			cfg.APIKey = os.Getenv(apiKeyEnv)
			if cfg.APIKey == "" {
				return fmt.Errorf("--api-key-env=%s: that environment variable is empty or unset", apiKeyEnv)
			}
		}
		kinesisNote := ""
		switch kinesisOn {
		case "on", "auto":
			awsCfg, err := config.LoadDefaultConfig(ctx)
			if err != nil {
				return fmt.Errorf("AWS configuration: %w", err)
			}
			if awsCfg.Region == "" {
				if kinesisOn == "on" {
					return fmt.Errorf("--kinesis=on needs an AWS region: set AWS_REGION")
				}
				kinesisNote = "Kinesis off: no AWS region (set AWS_REGION)"
				break
			}
			cfg.Kinesis = kinesis.NewFromConfig(awsCfg)
		case "off":
		default:
			return fmt.Errorf("--kinesis must be on, off or auto, not %q", kinesisOn)
		}
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
		fmt.Fprintf(os.Stderr, "pinpipe gateway: listening on http://%s (%s); Ctrl-C stops it after the requests in flight\n",
			cfg.Listen, strings.Join(backends, ", "))
		return srv.ListenAndServe(ctx)
	}
}
