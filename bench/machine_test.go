package main

import (
	"runtime"
	"testing"
)

func TestMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if loadAvg() == "unknown" || memTotal() == "unknown" || machineBusyCPU() <= 0 {
		t.Errorf("load %q, memory %q, busy CPU %v", loadAvg(), memTotal(), machineBusyCPU())
	}
	t.Logf("CPU %q, memory %s, load %s", cpuModel(), memTotal(), loadAvg())
}
