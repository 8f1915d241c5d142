package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/ingest/sourcedb"
)

func init() {
	addCommand("seed", "create and fill the source database (pinterest_data, geolocation_data, user_data)", seedCmd)
}

// sourceDSNEnv holds the source database's DSN when --dsn is not given, so
// that it need not appear on a command line (or in -help's defaults).
const sourceDSNEnv = "PINPIPE_SOURCE_DSN"

func seedCmd(fs *flag.FlagSet) func(context.Context) error {
	o := sourcedb.DefaultOptions()
	dsn := fs.String("dsn", "", "PostgreSQL DSN of the source database, postgres://user@host:5432/db (default $"+sourceDSNEnv+"); "+
		"put the password in PGPASSWORD or ~/.pgpass, not here")
	fs.IntVar(&o.Posts, "posts", o.Posts, "number of posts")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "random seed: the same seed gives the same posts as pinpipe generate and pinpipe emulate without --source")
	fs.Int64Var(&o.FirstInd, "first-ind", o.FirstInd, "key (index, ind) of the first post")
	return func(ctx context.Context) error {
		if *dsn == "" {
			*dsn = os.Getenv(sourceDSNEnv)
		}
		if *dsn == "" {
			return usageErrorf("--dsn (or $%s) is required", sourceDSNEnv)
		}
		st, err := sourcedb.Seed(ctx, *dsn, o)
		if err != nil {
			return err
		}
		fmt.Printf("seeded %d posts (seed %d) into %s: %s %d, %s %d, %s %d rows in %s\n", o.Posts, o.Seed, dsnPlace(*dsn),
			sourcedb.PinTable.Name, st.Rows[sourcedb.PinTable.Name], sourcedb.GeoTable.Name, st.Rows[sourcedb.GeoTable.Name],
			sourcedb.UserTable.Name, st.Rows[sourcedb.UserTable.Name], st.Took.Round(time.Millisecond))
		return nil
	}
}

// dsnPlace names the database a DSN points at without its password.
func dsnPlace(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "the database"
	}
	return fmt.Sprintf("database %q on %s:%d", cfg.Database, cfg.Host, cfg.Port)
}
