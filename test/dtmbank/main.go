// dtmbank: a bank written as DTM's documentation shows its TCC participants,
// with DTM's Go client library (dtmcli) and its branch barrier on
// PostgreSQL, and DTM's own initiator for it.  test/integration/t335 drives
// it by tcc (branches with protocol => 'dtm') and by DTM's server.
//
//	dtmbank serve -port P -dsn DSN -pidfile F
//	    the participant: POST /api/busi/TransOut{Try,Confirm,Cancel} moves
//	    money out of an account of bank 1, /api/busi/TransIn{...} into an
//	    account of bank 2; every handler reads the transaction from DTM's
//	    query parameters (dtmcli.BarrierFromQuery) and does its work inside
//	    bb.CallWithDB, which keeps DTM's barrier table dtm_barrier.barrier
//	    (from DTM's sqls/dtmcli.barrier.postgres.sql)
//	dtmbank tcc -dtm URL -busi URL [-try-in URL] [-timeout-to-fail S]
//	    one transfer as a DTM initiator: dtmcli.TccGlobalTransaction2 with
//	    the TransOut and TransIn branches; prints {"gid":...,"error":...}
//
// The payload is {"account": N, "amount": "30.00"}.  Schema bank (made by
// serve): accounts (bank, id, balance, frozen); hooks, per path: delay_ms
// (sleep before handling) and ongoing (after the work committed, answer
// ONGOING that many times); requests, one row per request.
package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dtm-labs/dtm/client/dtmcli"
	"github.com/go-resty/resty/v2"
	_ "github.com/jackc/pgx/v5/stdlib"
)

const schema = `
CREATE SCHEMA IF NOT EXISTS bank;
CREATE TABLE IF NOT EXISTS bank.accounts (
    bank int, id int, balance numeric(12,2) NOT NULL,
    frozen numeric(12,2) NOT NULL, PRIMARY KEY (bank, id));
CREATE TABLE IF NOT EXISTS bank.hooks (
    path text PRIMARY KEY, delay_ms int NOT NULL DEFAULT 0,
    ongoing int NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS bank.requests (
    id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(),
    path text, gid text, branch_id text, op text, acted boolean,
    status int);`

// request is the branch payload: the same body for try, confirm and cancel.
type request struct {
	Account int    `json:"account"`
	Amount  string `json:"amount"`
}

// action is the business step of one route: its SQL on bank.accounts,
// with $1 the account and $2 the amount; a try that updates no row is
// refused (dtmcli.ErrFailure).
type action struct {
	bank int
	op   string
	sql  string
}

var actions = map[string]action{
	"TransOutTry": {1, "try", `UPDATE bank.accounts SET balance = balance - $2, frozen = frozen + $2
		WHERE bank = 1 AND id = $1 AND balance >= $2`},
	"TransOutConfirm": {1, "confirm", `UPDATE bank.accounts SET frozen = frozen - $2
		WHERE bank = 1 AND id = $1`},
	"TransOutCancel": {1, "cancel", `UPDATE bank.accounts SET balance = balance + $2, frozen = frozen - $2
		WHERE bank = 1 AND id = $1`},
	"TransInTry": {2, "try", `UPDATE bank.accounts SET frozen = frozen + $2
		WHERE bank = 2 AND id = $1`},
	"TransInConfirm": {2, "confirm", `UPDATE bank.accounts SET balance = balance + $2, frozen = frozen - $2
		WHERE bank = 2 AND id = $1`},
	"TransInCancel": {2, "cancel", `UPDATE bank.accounts SET frozen = frozen - $2
		WHERE bank = 2 AND id = $1`},
}

var db *sql.DB

// hook reads the test hooks of a path: the delay, and whether this answer
// is to be ONGOING (one of the hook's count is used up).
func hook(path string, after bool) (delay time.Duration, ongoing bool) {
	if !after {
		var ms int
		if db.QueryRow("SELECT delay_ms FROM bank.hooks WHERE path = $1", path).Scan(&ms) == nil {
			delay = time.Duration(ms) * time.Millisecond
		}
		return
	}
	res, err := db.Exec("UPDATE bank.hooks SET ongoing = ongoing - 1 WHERE path = $1 AND ongoing > 0", path)
	if err == nil {
		n, _ := res.RowsAffected()
		ongoing = n > 0
	}
	return
}

// handle is one route: the barrier, then the business action in the same
// local transaction, then DTM's answer for the outcome.
func handle(name string, act action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if delay, _ := hook(path, false); delay > 0 {
			time.Sleep(delay)
		}
		var req request
		acted := false
		err := json.NewDecoder(r.Body).Decode(&req)
		var bb *dtmcli.BranchBarrier
		if err == nil {
			bb, err = dtmcli.BarrierFromQuery(r.URL.Query())
		}
		if err == nil {
			err = bb.CallWithDB(db, func(tx *sql.Tx) error {
				res, err := tx.Exec(act.sql, req.Account, req.Amount)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
					if act.op == "try" {
						return dtmcli.ErrFailure
					}
					return fmt.Errorf("%s: no account %d in bank %d", name, req.Account, act.bank)
				}
				acted = true
				return nil
			})
		}
		if err == nil {
			if _, ongoing := hook(path, true); ongoing {
				err = dtmcli.ErrOngoing
			}
		}
		code, body := dtmcli.Result2HttpJSON(err)
		if err == nil {
			body = dtmcli.MapSuccess
		}
		q := r.URL.Query()
		if _, e := db.Exec(`INSERT INTO bank.requests (path, gid, branch_id, op, acted, status)
			VALUES ($1, $2, $3, $4, $5, $6)`, path, q.Get("gid"), q.Get("branch_id"),
			q.Get("op"), acted, code); e != nil {
			log.Printf("recording the request: %v", e)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	}
}

// serve runs the participant until it is stopped.
func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	port := fs.Int("port", 0, "port on 127.0.0.1")
	dsn := fs.String("dsn", "", "the bank's database")
	pidfile := fs.String("pidfile", "", "written once listening")
	_ = fs.Parse(args)
	var err error
	if db, err = sql.Open("pgx", *dsn); err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(20)
	if _, err = db.Exec(schema); err != nil {
		log.Fatal(err)
	}
	dtmcli.SetCurrentDBType(dtmcli.DBTypePostgres)
	mux := http.NewServeMux()
	for name, act := range actions {
		mux.HandleFunc("POST /api/busi/"+name, handle(name, act))
	}
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", *port), Handler: mux}
	go func() {
		for i := 0; i < 100; i++ {
			if c, err := http.Get("http://" + srv.Addr + "/"); err == nil {
				c.Body.Close()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if *pidfile != "" {
			_ = os.WriteFile(*pidfile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
		}
	}()
	log.Fatal(srv.ListenAndServe())
}

// initiate runs one transfer as DTM's Go client does: prepare, the tries of
// TransOut and TransIn (each registered with DTM before it is called), then
// submit, or abort if the callback failed.
func initiate(args []string) {
	fs := flag.NewFlagSet("tcc", flag.ExitOnError)
	dtm := fs.String("dtm", "", "DTM server, e.g. http://127.0.0.1:36789/api/dtmsvr")
	busi := fs.String("busi", "", "the bank, e.g. http://127.0.0.1:8081/api/busi")
	tryIn := fs.String("try-in", "", "TransIn's try URL (default the bank's)")
	from := fs.Int("from", 1, "account of bank 1")
	to := fs.Int("to", 2, "account of bank 2")
	amount := fs.String("amount", "30.00", "amount")
	timeoutToFail := fs.Int64("timeout-to-fail", 0, "seconds before DTM aborts an undecided transaction")
	_ = fs.Parse(args)
	if *tryIn == "" {
		*tryIn = *busi + "/TransInTry"
	}
	gid := dtmcli.MustGenGid(*dtm)
	err := dtmcli.TccGlobalTransaction2(*dtm, gid, func(t *dtmcli.Tcc) {
		t.RetryInterval = 1
		t.TimeoutToFail = *timeoutToFail
	}, func(t *dtmcli.Tcc) (*resty.Response, error) {
		resp, err := t.CallBranch(&request{*from, *amount}, *busi+"/TransOutTry",
			*busi+"/TransOutConfirm", *busi+"/TransOutCancel")
		if err != nil {
			return resp, err
		}
		return t.CallBranch(&request{*to, *amount}, *tryIn,
			*busi+"/TransInConfirm", *busi+"/TransInCancel")
	})
	out := map[string]string{"gid": gid, "error": ""}
	if err != nil {
		out["error"] = err.Error()
		if errors.Is(err, dtmcli.ErrFailure) || strings.Contains(err.Error(), dtmcli.ResultFailure) {
			out["failure"] = "FAILURE"
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	log.SetFlags(log.Lmicroseconds)
	if len(os.Args) < 2 {
		log.Fatal("usage: dtmbank serve|tcc ...")
	}
	switch strings.ToLower(os.Args[1]) {
	case "serve":
		serve(os.Args[2:])
	case "tcc":
		initiate(os.Args[2:])
	default:
		log.Fatalf("unknown command %s", os.Args[1])
	}
}
