// The transfer initiator in Go, with pgx v5 from the Go module proxy
// (go.mod and go.sum pin it):
//
//	go build -o transfer .
//	PGHOST=... PGPORT=... PGDATABASE=coord PGUSER=... \
//	BANK1_URL=http://127.0.0.1:18201 BANK2_URL=http://127.0.0.1:18202 \
//	    ./transfer KEY
//
// Moves 10.00 from account 1 (bank1) to account 2 (bank2) with business key
// KEY-1, then tries the same to account 3, which bank2 does not have: its
// try is refused (SQLSTATE TC001), the local transaction rolls back with
// the transfers row, and the coordinator cancels bank1's branch.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var banks = [2]string{os.Getenv("BANK1_URL"), os.Getenv("BANK2_URL")}

// transfer runs one global transaction and returns its gid once the
// decision commits.
func transfer(ctx context.Context, conn *pgx.Conn, key string, from, to int, amount string) (string, error) {
	var gid string
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx,
			"SELECT tcc_begin(kind => 'transfer', business_key => $1)::text",
			key).Scan(&gid); err != nil {
			return err
		}
		for i, account := range [2]int{from, to} {
			payload := map[string]any{"account": account, "amount": amount}
			if _, err := tx.Exec(ctx,
				"SELECT tcc_branch($1, $2, $3, $4, $5, name => $6)",
				gid, banks[i]+"/try", banks[i]+"/confirm", banks[i]+"/cancel",
				payload, fmt.Sprintf("account %d", account)); err != nil {
				return err
			}
		}
		// the initiator's own write, committed together with the decision
		if _, err := tx.Exec(ctx,
			`INSERT INTO transfers (business_key, gid, from_account, to_account, amount)
			 VALUES ($1, $2, $3, $4, $5)`,
			key, gid, from, to, amount); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT tcc_finish($1)", gid)
		return err
	})
	return gid, err
}

func main() {
	ctx := context.Background()
	key := os.Args[1]
	conn, err := pgx.Connect(ctx, "") // connection from PGHOST, PGPORT, ...
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

	gid, err := transfer(ctx, conn, key+"-1", 1, 2, "10.00")
	if err != nil {
		log.Fatal(err)
	}
	var status string
	if err := conn.QueryRow(ctx, "SELECT tcc_wait($1)", gid).Scan(&status); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s-1: %s\n", key, status)

	_, err = transfer(ctx, conn, key+"-2", 1, 3, "10.00")
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		fmt.Printf("%s-2: not refused\n", key)
	case errors.As(err, &pgErr) && pgErr.Code == "TC001":
		fmt.Printf("%s-2: refused (%s)\n", key, pgErr.Code)
	default:
		log.Fatal(err)
	}
}
