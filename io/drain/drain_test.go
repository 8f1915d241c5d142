package drain

import (
	"os"
	"os/exec"
	"testing"
)

func TestMarker(t *testing.T) {
	a, err := NewMarker()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMarker()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if Requested(a.Path()) || Requested(b.Path()) {
		t.Fatal("requested before Request")
	}
	if Requested("") {
		t.Fatal("a read without a marker is drained")
	}
	if err := a.Request(); err != nil {
		t.Fatal(err)
	}
	if err := a.Request(); err != nil {
		t.Fatalf("a second Request: %v", err)
	}
	if !Requested(a.Path()) {
		t.Fatal("not requested after Request")
	}
	if Requested(b.Path()) {
		t.Fatal("a request on one marker drained another: the request is not the marker's own")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.Path()); !os.IsNotExist(err) {
		t.Errorf("Close left the marker: %v", err)
	}
}

// TestRequestReachesAnotherProcess: a worker in its own process (PROCESS
// environment) sees the request the launcher made, through the path alone.
func TestRequestReachesAnotherProcess(t *testing.T) {
	if path := os.Getenv("DRAIN_TEST_CHILD"); path != "" {
		if !Requested(path) {
			os.Exit(3)
		}
		os.Exit(0)
	}
	m, err := NewMarker()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	child := func() error {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequestReachesAnotherProcess$")
		cmd.Env = append(os.Environ(), "DRAIN_TEST_CHILD="+m.Path())
		return cmd.Run()
	}
	if err := child(); err == nil {
		t.Fatal("another process saw a request before it was made")
	}
	if err := m.Request(); err != nil {
		t.Fatal(err)
	}
	if err := child(); err != nil {
		t.Fatalf("another process did not see the request: %v", err)
	}
}
