package guest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Markers the guest init prints on its serial console; the package
// documentation gives the line formats.
const (
	MarkerReady     = "VHU-READY"
	MarkerPingOK    = "VHU-PING-OK"
	MarkerPingFail  = "VHU-PING-FAIL"
	MarkerPingStart = "VHU-PING-START" // continuous ping (CmdlineInterval) started
	MarkerPingLost  = "VHU-PING-LOST"  // continuous ping: replies missing before this line's next reply
	MarkerError     = "VHU-ERROR"
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

// Lines returns every line after offset that contains marker, without
// waiting (Collect waits for a number of them). A VHU-ERROR line fails.
func (c Console) Lines(offset int64, marker string) ([]string, error) {
	return c.find(offset, marker, math.MaxInt)
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

// pingReplyRe matches a reply line of the continuous ping:
// "VHU-PING-OK run=R 64 bytes from PEER: seq=N ttl=T time=X ms".
var pingReplyRe = regexp.MustCompile(`^` + MarkerPingOK + ` run=([0-9]+) .* bytes from .*: seq=([0-9]+) `)

// PingSeqs returns the sequence numbers of the continuous ping's replies
// (guest.CmdlineInterval) in console order. Lines without VHU-PING-OK are
// skipped, so the lines may be a whole console log; a VHU-PING-OK line of the
// once-a-second ping (Cmdline) is an error. busybox's seq counts the requests
// sent from 0 in 16 bits; it is unwrapped here, so the numbers keep rising past
// 65535 (a late reply may still come out of order, and a duplicate twice). The
// lines must come from one ping process: if the guest had to restart ping (run=
// changes; VHU-PING-FAIL lines say why), its numbering started again at 0 and
// PingSeqs fails.
func PingSeqs(lines []string) ([]int, error) {
	var seqs []int
	run := ""
	for _, l := range lines {
		l = strings.TrimRight(l, "\r")
		i := strings.Index(l, MarkerPingOK)
		if i < 0 {
			continue
		}
		m := pingReplyRe.FindStringSubmatch(l[i:])
		if m == nil {
			return nil, fmt.Errorf("not a continuous ping reply (guest.CmdlineInterval): %q", l)
		}
		if run == "" {
			run = m[1]
		} else if m[1] != run {
			return nil, fmt.Errorf("the guest restarted ping (run %s, then run %s): sequence numbers start again at 0 and do not measure the gap: %q", run, m[1], l)
		}
		raw, err := strconv.Atoi(m[2])
		if err != nil || raw > 0xffff {
			return nil, fmt.Errorf("bad seq in %q", l)
		}
		seq := raw
		if len(seqs) > 0 {
			// The nearest number to the previous one with these low 16 bits.
			prev := seqs[len(seqs)-1]
			d := (raw - prev) & 0xffff
			if d >= 0x8000 {
				d -= 0x10000
			}
			seq = prev + d
		}
		seqs = append(seqs, seq)
	}
	return seqs, nil
}

// PingGap finds the longest run of unanswered requests among the continuous
// ping's replies (see PingSeqs for the lines): lastBefore is the last seq
// answered before it, firstAfter the first answered after it, and lost =
// firstAfter-lastBefore-1 requests went unanswered. The guest sends one request
// per interval, so the peer was unreachable for about lost × interval of the
// guest's time; the guest's clock, and so its ping, stands still while the VM
// is paused (a migration's final copy), so that time is not in the count.
//
// Only requests between two replies count: collect the lines from an offset
// taken while replies flow and until replies have resumed (Console.WaitFor
// after the event, then Console.Lines). Without any loss, lost is 0 and
// lastBefore, firstAfter are the first two seqs. Ties go to the earliest gap;
// fewer than two distinct replies are an error.
func PingGap(lines []string) (lost, lastBefore, firstAfter int, err error) {
	seqs, err := PingSeqs(lines)
	if err != nil {
		return 0, 0, 0, err
	}
	seqs = slices.Clone(seqs)
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	if len(seqs) < 2 {
		return 0, 0, 0, fmt.Errorf("%d distinct ping replies in %d lines, need two to measure a gap", len(seqs), len(lines))
	}
	lastBefore, firstAfter = seqs[0], seqs[1]
	for i := 1; i < len(seqs); i++ {
		if seqs[i]-seqs[i-1] > firstAfter-lastBefore {
			lastBefore, firstAfter = seqs[i-1], seqs[i]
		}
	}
	return firstAfter - lastBefore - 1, lastBefore, firstAfter, nil
}
