// goload: the two Go initiators of the benchmark's S10 ("beside DTM",
// bench/README.md), each running two-branch TCC global transactions against
// the benchmark's stub participant from a number of clients for a time:
//
//	goload dtm -dtm URL -stub URL -confirm URL -clients 32 -seconds 15
//	    DTM's Go client: dtmcli.TccGlobalTransaction with two CallBranch;
//	    DTM's server confirms after the submit
//	goload tcc -dsn DSN -stub URL -confirm URL -kind K -clients 32 -seconds 15
//	    pgx v5: SELECT tcc_run(two branches, kind => K) in autocommit, so the
//	    statement's commit confirms; tcc's worker confirms after it
//
// Tries and cancels go to -stub, confirms to -confirm (so that the confirm
// endpoint alone can be taken down).  Prints one JSON line: transactions
// completed, errors, seconds, and latency p50 / p99 / mean in ms.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/dtm-labs/dtm/client/dtmcli"
	"github.com/dtm-labs/dtm/client/dtmcli/dtmimp"
	"github.com/go-resty/resty/v2"
	"github.com/jackc/pgx/v5/pgxpool"
)

// result is what the program prints.
type result struct {
	Mode    string  `json:"mode"`
	Gtx     int     `json:"gtx"`
	Errors  int     `json:"errors"`
	Seconds float64 `json:"seconds"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Mean    float64 `json:"mean_ms"`
	Error   string  `json:"first_error,omitempty"`
}

// newGid is a random gid of 32 hex digits, made by the initiator as DTM
// allows (dtmcli.MustGenGid would ask the server for one, a call more).
func newGid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// percentile of sorted latencies, nearest rank, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	r := int(p*float64(len(sorted))+0.999999) - 1
	if r < 0 {
		r = 0
	}
	return float64(sorted[r].Microseconds()) / 1000
}

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 || (os.Args[1] != "dtm" && os.Args[1] != "tcc") {
		log.Fatal("usage: goload dtm|tcc [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	dtm := fs.String("dtm", "", "DTM server, http://127.0.0.1:PORT/api/dtmsvr")
	dsn := fs.String("dsn", "", "the coordinator database")
	stub := fs.String("stub", "", "participant for tries and cancels")
	confirm := fs.String("confirm", "", "participant for confirms")
	kind := fs.String("kind", "s10", "tcc_run's kind")
	clients := fs.Int("clients", 32, "concurrent clients")
	seconds := fs.Float64("seconds", 15, "duration")
	_ = fs.Parse(os.Args[2:])
	ctx := context.Background()

	var one func() error
	switch mode {
	case "dtm":
		// keep connections to DTM's server and the stub alive for every
		// client (resty's default keeps 3 idle per host)
		dtmimp.GetRestyClient2(0).SetTransport(&http.Transport{
			MaxIdleConns: 4 * *clients, MaxIdleConnsPerHost: 2 * *clients,
			IdleConnTimeout: 90 * time.Second})
		body := map[string]int{"amount": 1}
		one = func() error {
			return dtmcli.TccGlobalTransaction(*dtm, newGid(), func(t *dtmcli.Tcc) (*resty.Response, error) {
				resp, err := t.CallBranch(body, *stub+"/a/try", *confirm+"/a/confirm", *stub+"/a/cancel")
				if err != nil {
					return resp, err
				}
				return t.CallBranch(body, *stub+"/b/try", *confirm+"/b/confirm", *stub+"/b/cancel")
			})
		}
	case "tcc":
		cfg, err := pgxpool.ParseConfig(*dsn)
		if err != nil {
			log.Fatal(err)
		}
		cfg.MaxConns = int32(*clients)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			log.Fatal(err)
		}
		defer pool.Close()
		branches, _ := json.Marshal([]map[string]any{
			{"try": *stub + "/a/try", "confirm": *confirm + "/a/confirm",
				"cancel": *stub + "/a/cancel", "payload": map[string]int{"amount": 1}},
			{"try": *stub + "/b/try", "confirm": *confirm + "/b/confirm",
				"cancel": *stub + "/b/cancel", "payload": map[string]int{"amount": 1}},
		})
		one = func() error {
			_, err := pool.Exec(ctx, "SELECT tcc_run($1::jsonb, kind => $2)", string(branches), *kind)
			return err
		}
	}

	var mu sync.Mutex
	var lat []time.Duration
	res := result{Mode: mode}
	start := time.Now()
	deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			errs := 0
			first := ""
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := one(); err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			res.Errors += errs
			if res.Error == "" {
				res.Error = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.Gtx = len(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	if len(lat) > 0 {
		res.Mean = float64(sum.Microseconds()) / 1000 / float64(len(lat))
	}
	res.P50 = percentile(lat, 0.50)
	res.P99 = percentile(lat, 0.99)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
