package metrics

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Logger is where the Handler reports errors; a *log.Logger is one (as for
// promhttp.HandlerOpts.ErrorLog).
type Logger interface {
	Println(v ...any)
}

// HandlerOpts are the settings of promhttp.HandlerOpts the Handler keeps.
// Errors are always handled as promhttp.ContinueOnError does: logged, and
// what could be gathered is served.
type HandlerOpts struct {
	// ErrorLog, if not nil, gets the errors of gathering and of writing.
	ErrorLog Logger
	// MaxRequestsInFlight, if positive, answers 503 to the requests beyond
	// that many at once.
	MaxRequestsInFlight int
	// Timeout, if positive, answers 503 to a request not served in time
	// (through http.TimeoutHandler, which holds the response until done).
	Timeout time.Duration
}

// contentType is the text format, version 0.0.4, whatever the request's
// Accept: Prometheus and every other scraper read it.
const contentType = string(expfmt.FmtText)

// NewHandler serves /metrics in the text format: w's families, rendered
// straight from the state, then those of g (nil: none), encoded by expfmt
// as promhttp does. A family of g that w renders too is left out (and the
// clash logged): a family twice would fail the scrape. The body is gzipped
// when the request accepts it, and ?name[]=… keeps the families named, as
// promhttp does.
func NewHandler(w *Writer, g prometheus.Gatherer, o HandlerOpts) http.Handler {
	h := &handler{w: w, g: g, log: o.ErrorLog}
	if o.MaxRequestsInFlight > 0 {
		h.inFlight = make(chan struct{}, o.MaxRequestsInFlight)
		h.limitMsg = fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", o.MaxRequestsInFlight)
	}
	if o.Timeout <= 0 {
		return h
	}
	return http.TimeoutHandler(h, o.Timeout, fmt.Sprintf("Exceeded configured timeout of %v.\n", o.Timeout))
}

type handler struct {
	w        *Writer
	g        prometheus.Gatherer
	log      Logger
	inFlight chan struct{}
	limitMsg string
}

// gzipPool holds gzip writers at BestSpeed: on a 200-port body it
// compresses about four times faster than promhttp's default level, to a
// body some 8% larger.
var gzipPool = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level: no error
	return zw
}}

func (h *handler) ServeHTTP(rsp http.ResponseWriter, req *http.Request) {
	if h.inFlight != nil {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			http.Error(rsp, h.limitMsg, http.StatusServiceUnavailable)
			return
		}
	}
	var keep map[string]bool
	if names := req.URL.Query()["name[]"]; len(names) > 0 {
		keep = make(map[string]bool, len(names))
		for _, n := range names {
			keep[n] = true
		}
	}
	// Gathered first, as promhttp does: the series of g are no older than
	// the Writer's.
	var mfs []*dto.MetricFamily
	if h.g != nil {
		var err error
		if mfs, err = h.g.Gather(); err != nil {
			h.logf("error gathering metrics:", err)
		}
	}

	hdr := rsp.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Add("Vary", "Accept-Encoding")
	var out io.Writer = rsp
	if acceptsGzip(req.Header) {
		hdr.Set("Content-Encoding", "gzip")
		gz := gzipPool.Get().(*gzip.Writer)
		gz.Reset(rsp)
		defer func() {
			if err := gz.Close(); err != nil {
				h.logf("error closing the gzip stream:", err)
			}
			gz.Reset(nil)
			gzipPool.Put(gz)
		}()
		out = gz
	}

	if _, err := h.w.write(out, keep); err != nil {
		h.logf("error writing the port series:", err)
		return
	}
	enc := expfmt.NewEncoder(out, expfmt.FmtText)
	for _, mf := range mfs {
		name := mf.GetName()
		if keep != nil && !keep[name] {
			continue
		}
		if ownFamily(name) {
			h.logf("error encoding and sending metric family:", fmt.Errorf("%s is the agent's own family, served from its state; the registry's copy is left out", name))
			continue
		}
		if err := enc.Encode(mf); err != nil {
			h.logf("error encoding and sending metric family:", err)
			return
		}
	}
}

func (h *handler) logf(msg string, err error) {
	if h.log != nil {
		h.log.Println(msg, err)
	}
}

// acceptsGzip chooses between identity and gzip as promhttp does: the
// coding of the highest q the request gives (identity on a tie), "*"
// standing for either; identity if none has a q above 0.
func acceptsGzip(h http.Header) bool {
	best, bestQ := "identity", -1.0
	for _, offer := range [...]string{"identity", "gzip"} {
		for _, line := range h.Values("Accept-Encoding") {
			for spec := range strings.SplitSeq(line, ",") {
				coding, params, _ := strings.Cut(spec, ";")
				coding = strings.TrimSpace(coding)
				if coding != offer && coding != "*" {
					continue
				}
				q := 1.0
				if p := strings.TrimSpace(params); p != "" {
					v, ok := strings.CutPrefix(p, "q=")
					if !ok {
						continue
					}
					f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					if err != nil || f < 0 {
						continue
					}
					q = f
				}
				if q > bestQ {
					best, bestQ = offer, q
				}
			}
		}
	}
	return best == "gzip" && bestQ > 0
}
