package guest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Markers the guest init prints on its serial console.
const (
	MarkerReady    = "VHU-READY"
	MarkerPingOK   = "VHU-PING-OK"
	MarkerPingFail = "VHU-PING-FAIL"
	MarkerError    = "VHU-ERROR"
)

// Console follows a guest's serial console log file.
type Console struct {
	Path string
}

// Offset is the current end of the log: lines after it are "new".
func (c Console) Offset() int64 {
	st, err := os.Stat(c.Path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// Tail returns the last n lines of the log, for error messages.
func (c Console) Tail(n int) string {
	data, _ := os.ReadFile(c.Path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitFor polls the log until a line after offset contains marker and returns
// it. A VHU-ERROR line from the guest init fails at once.
func (c Console) WaitFor(ctx context.Context, offset int64, marker string) (string, error) {
	lines, err := c.Collect(ctx, offset, marker, 1)
	if err != nil {
		return "", err
	}
	return lines[0], nil
}

// Collect waits until n lines after offset contain marker and returns them.
func (c Console) Collect(ctx context.Context, offset int64, marker string, n int) ([]string, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		lines, err := c.find(offset, marker, n)
		if err != nil || len(lines) >= n {
			return lines, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d lines with %q on console %s: %w; last lines:\n%s", len(lines), n, marker, c.Path, ctx.Err(), c.Tail(15))
		case <-tick.C:
		}
	}
}

func (c Console) find(offset int64, marker string, n int) ([]string, error) {
	data, err := os.ReadFile(c.Path)
	if err != nil || int64(len(data)) <= offset {
		return nil, nil
	}
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(data[offset:]))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() && len(found) < n {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.Contains(line, MarkerError) {
			return nil, fmt.Errorf("guest init reported an error: %s", line)
		}
		if strings.Contains(line, marker) {
			found = append(found, line)
		}
	}
	return found, nil
}

// MedianRTT is the median round-trip time of VHU-PING-OK lines.
func MedianRTT(lines []string) (time.Duration, error) {
	var rtts []time.Duration
	for _, l := range lines {
		r, err := RTT(l)
		if err != nil {
			return 0, err
		}
		rtts = append(rtts, r)
	}
	if len(rtts) == 0 {
		return 0, fmt.Errorf("no ping lines")
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}

var rttRe = regexp.MustCompile(`time=([0-9.]+) ms`)

// RTT extracts the round-trip time from a VHU-PING-OK line.
func RTT(line string) (time.Duration, error) {
	m := rttRe.FindStringSubmatch(line)
	if m == nil {
		return 0, fmt.Errorf("no time=... ms in %q", line)
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("parse RTT in %q: %w", line, err)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}
