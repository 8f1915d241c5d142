package kinesisio

import "errors"

const defaultWriteMaxAttempts = 10

type writeOption struct {
	client      clientConfig
	maxAttempts int
}

// WriteOptionFn configures Write.
type WriteOptionFn func(*writeOption) error

// WriteEndpoint sends the writer's calls to url (e.g. a kinesalite) instead
// of the endpoint the AWS settings give.
func WriteEndpoint(url string) WriteOptionFn {
	return func(o *writeOption) error {
		o.client.Endpoint = url
		return nil
	}
}

// WriteRegion sets the AWS region instead of the one the AWS settings give.
func WriteRegion(region string) WriteOptionFn {
	return func(o *writeOption) error {
		o.client.Region = region
		return nil
	}
}

// WriteMaxAttempts sets how many PutRecords calls a batch may take before
// the bundle fails (default 10). Each retry sends only the entries that
// failed, after an exponential backoff (up to 5 s).
func WriteMaxAttempts(n int) WriteOptionFn {
	return func(o *writeOption) error {
		if n < 1 {
			return errors.New("the attempts must be at least 1")
		}
		o.maxAttempts = n
		return nil
	}
}
