package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpREADMEPorts: up listens by default where the README's commands
// point (Kafka 9092, S3 9000, the gateway 8082).
func TestUpREADMEPorts(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"pinpipe dev kafka --listen=" + upKafkaListen,
		"pinpipe dev s3 --listen=" + upS3Listen,
		"pinpipe gateway --listen=" + upGatewayListen + " --kafka-brokers=" + upKafkaListen,
		"AWS_ENDPOINT_URL_S3=http://" + upS3Listen,
	} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("the README has no %q: up's default addresses are not the README's", want)
		}
	}
}

// TestUpPorts: up listens on the addresses it is given when they are free,
// and when one is taken listens on a free port instead, says so, and
// prints the commands with the port it has.
func TestUpPorts(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free := closedAddr(t) // nothing listens there
	p := startPinpipe(t, nil, "", "up", "--dir="+t.TempDir(), "--kafka-listen="+taken.Addr().String(), "--s3-listen="+free, "--gateway-listen=127.0.0.1:0")
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(p.out.String(), "stream (Ctrl-C drains it)") {
		if time.Now().After(deadline) || p.cmd.ProcessState != nil {
			t.Fatalf("up did not print its endpoints and commands; stdout:\n%s\nstderr:\n%s", p.out.String(), p.errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.signal(syscall.SIGTERM)
	r, _ := p.wait(defaultDrainTimeout + slack)
	if want := "pinpipe up: " + taken.Addr().String() + " is taken, so Kafka listens on a free port instead"; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
	}
	if strings.Contains(r.stderr, free+" is taken") {
		t.Errorf("a free address said taken:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "http://"+free) {
		t.Errorf("S3 does not listen on the free address it was given, %s:\n%s", free, r.stdout)
	}
	if strings.Contains(r.stdout, "--kafka-brokers="+taken.Addr().String()) || !strings.Contains(r.stdout, "--kafka-brokers=127.0.0.1:") {
		t.Errorf("the printed commands do not use Kafka's new port:\n%s", r.stdout)
	}
}
