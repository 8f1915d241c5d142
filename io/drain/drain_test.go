package drain

import "testing"

func TestRequest(t *testing.T) {
	if Requested() {
		t.Fatal("requested before Request")
	}
	Request()
	Request()
	if !Requested() {
		t.Fatal("not requested after Request")
	}
	select {
	case <-Done():
	default:
		t.Fatal("Done not closed")
	}
}
