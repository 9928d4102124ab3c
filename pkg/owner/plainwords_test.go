package owner

import (
	"strings"
	"testing"
)

// TestJSONErrorsInWords: a bad measurement file is explained by key and expected value, not
// by Go's decoder ("cannot unmarshal string into Go struct field ... of type uint32").
func TestJSONErrorsInWords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"sev-policy": "x"}`, `m.json: not a measurement file (hostctl launch writes W/measurement.json): "sev-policy": want a whole number from 0 to 4294967295, not a JSON string`},
		{`{"sev-api-major": 300}`, `m.json: not a measurement file (hostctl launch writes W/measurement.json): "sev-api-major": want a whole number from 0 to 255, not a JSON number 300`},
		{`{"sev-measurement": 5}`, `m.json: not a measurement file (hostctl launch writes W/measurement.json): "sev-measurement": want a string, not a JSON number`},
		{``, `m.json: not a measurement file (hostctl launch writes W/measurement.json): the file is empty`},
		{`{"sev-policy": 1`, `m.json: not a measurement file (hostctl launch writes W/measurement.json): the JSON ends early (a truncated file?)`},
		{`x`, `m.json: not a measurement file (hostctl launch writes W/measurement.json): not valid JSON at byte 1: invalid character 'x' looking for beginning of value`},
	} {
		_, err := ParseMeasurementFile("m.json", []byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: %v\nwant %s", tc.in, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "unmarshal")) {
			t.Errorf("%q: %v leaks the decoder", tc.in, err)
		}
	}
}
