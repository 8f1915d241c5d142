package kafkaio

import (
	"testing"
	"time"
)

func TestReadOptions(t *testing.T) {
	o, err := newReadOption(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Start != StartEarliest || o.PollInterval != DefaultPollInterval || o.DiscoveryInterval != DefaultDiscoveryInterval || o.MaxDelay != DefaultMaxDelay {
		t.Errorf("defaults = %+v", o)
	}
	if o, _ := newReadOption([]ReadOptionFn{ReadGroup("g")}); o.Start != StartCommitted {
		t.Errorf("start with a group = %v, want committed", o.Start)
	}
	if o, _ := newReadOption([]ReadOptionFn{ReadGroup("g"), ReadStart(StartLatest)}); o.Start != StartLatest {
		t.Errorf("start = %v, want latest", o.Start)
	}
	if o, _ := newReadOption([]ReadOptionFn{ReadUntilLatest()}); o.DiscoveryInterval != 0 {
		t.Error("a bounded read keeps re-listing")
	}
	o, _ = newReadOption([]ReadOptionFn{ReadEndOffsets(map[string]map[int32]int64{"t": {0: 5}})})
	if o.DiscoveryInterval != 0 || len(o.Ends) != 1 || o.Ends[0] != (partitionOffset{"t", 0, 5}) {
		t.Errorf("end offsets: %+v", o)
	}
	for name, opt := range map[string]ReadOptionFn{
		"committed without group": ReadStart(StartCommitted),
		"bad start":               ReadStart(StartPosition(9)),
		"empty group":             ReadGroup(""),
		"zero poll":               ReadPollInterval(0),
		"negative delay":          ReadMaxDelay(-time.Second),
		"negative discovery":      ReadDiscoveryInterval(-time.Second),
		"negative end":            ReadEndOffsets(map[string]map[int32]int64{"t": {0: -1}}),
	} {
		if _, err := newReadOption([]ReadOptionFn{opt}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
