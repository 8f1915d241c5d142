package demo

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/transforms"
)

// malformedRecord is the i-th record of a buggy client, each different: one
// of the kinds the data contract rejects (not JSON, JSON that is not an object, a
// missing key, a key that is not an integer), for each table in turn.
func malformedRecord(i int) (table string, value []byte) {
	table = transforms.Tables[i%len(transforms.Tables)]
	key := "ind"
	if table == transforms.TablePin {
		key = "index"
	}
	n := strconv.Itoa(i) // each record distinct: the dead-letter table keeps one row per distinct record
	switch (i / len(transforms.Tables)) % 4 {
	case 0:
		return table, []byte(`{"` + key + `": 7528, "title": "cut off in the midd` + n)
	case 1:
		return table, []byte(`["not", "an", "object", ` + n + `]`)
	case 2:
		return table, []byte(`{"country": "Chad", "title": "no key at all ` + n + `"}`)
	default:
		return table, []byte(`{"` + key + `": "seventy ` + n + `"}`)
	}
}

// sendMalformed sends n malformed records through the gateway's REST Proxy
// API in the binary format (base64 values), which carries any bytes, as a
// buggy client would: they show the dead-letter path at work.
func sendMalformed(ctx context.Context, gatewayURL, prefix string, n int) error {
	type record struct {
		Value string `json:"value"`
	}
	byTopic := map[string][]record{}
	for i := range n {
		table, v := malformedRecord(i)
		topic := emulator.TopicName(prefix, table)
		byTopic[topic] = append(byTopic[topic], record{base64.StdEncoding.EncodeToString(v)})
	}
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for topic, recs := range byTopic {
		body, err := json.Marshal(map[string]any{"records": recs})
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, gatewayURL+"/topics/"+topic, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/vnd.kafka.binary.v2+json")
		res, err := cl.Do(req)
		if err != nil {
			return fmt.Errorf("demo: sending malformed records to %s: %w", topic, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("demo: sending malformed records to %s: %s: %s", topic, res.Status, msg)
		}
	}
	return nil
}
