package harness

import (
	"regexp"
	"strconv"
	"strings"
)

// reTimelineRow is one row of `hostctl receive --timeline`: step, ms since start, +ms.
var reTimelineRow = regexp.MustCompile(`^  ([A-Za-z][A-Za-z0-9 ]*?) +([0-9]+) +([0-9]+)$`)

// TimelineSteps parses the timeline rows `hostctl receive --timeline` printed in out (after
// its "timeline: " header and the column line): the steps in order and their ms since the
// receive started.
func TimelineSteps(out string) ([]string, []int) {
	var steps []string
	var ms []int
	in := false
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "timeline: ") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(l, "  step ") {
			continue
		}
		m := reTimelineRow.FindStringSubmatch(l)
		if m == nil {
			break
		}
		n, _ := strconv.Atoi(m[2])
		steps, ms = append(steps, m[1]), append(ms, n)
	}
	return steps, ms
}
