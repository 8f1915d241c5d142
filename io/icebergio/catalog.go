// Package icebergio publishes the batch job's tables as Apache Iceberg v2
// tables (github.com/apache/iceberg-go), registered in a catalog, so that
// DuckDB, Trino, Spark, Athena or Snowflake read them with their schema,
// partitioning and history, and never see a half-written run.
//
// The batch job's committed layout is already the one Iceberg wants: file
// part-NNNNN of a clean table is bucket N of Iceberg's bucket[N](ind)
// (io/smb hashes with Iceberg's murmur3 of the long), sorted by ind, in
// Parquet whose columns carry the schema's field ids (io/parquetio). With
// --table-format=iceberg the job writes those files under the tables' locations
// in the warehouse (<warehouse>/<namespace>/<table>/), commits its run as
// usual (<output>/_commit.json), and then Publish makes each table's
// current snapshot exactly what the run committed: one Iceberg transaction
// per table, adding the run's files and removing the ones they replace
// (only the buckets the run rewrote), with the run's id and time in the
// snapshot summary (SummaryRunID, SummaryCommittedAt). The eight insights
// and the dead letters become tables too, rewritten whole by each run.
//
// What a reader sees: each table moves from one run's snapshot to the next
// in one atomic catalog commit, but the tables commit one after another,
// not together. While a run publishes, some tables may show the new run and
// others still the previous one; a reader that needs one run across tables
// picks, in each table, the snapshot whose summary has that run's
// pinpipe.run-id (time travel: FOR VERSION AS OF that snapshot id). A run
// killed before or during its publishing leaves every table at a complete
// snapshot; the next run publishes first what the output's commit says
// (Publish is idempotent: a table already at the run's snapshot is left as
// it is) and removes the files the dead run left in no snapshot
// (RemoveOrphans; `pinpipe tables clean-orphans` lists or removes them by
// hand).
//
// Catalogs (Options.Catalog): "sql", a SQLite file (pure Go, no service;
// by default catalog.sqlite inside a local warehouse); "postgres", the same
// SQL catalog in a PostgreSQL database; "hadoop", iceberg-go's file catalog
// (metadata/vN.metadata.json and version-hint.text under each table, local
// warehouses only: its commits are atomic only on a local filesystem);
// "rest" and "glue", wired through iceberg-go's REST and AWS Glue catalogs
// and not tested here (no such service runs on this machine).
//
// The streaming job's tables (StreamNamespace) get a snapshot per window
// pane (StreamWriter.Commit, exactly once by the paths of its span files);
// RewriteFiles (`pinpipe tables rewrite-files`) merges the span files the
// job will never look for again, those its durable positions have settled
// (see Compaction in compact.go).
package icebergio

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/glue"   // --catalog=glue
	_ "github.com/apache/iceberg-go/catalog/hadoop" // --catalog=hadoop
	_ "github.com/apache/iceberg-go/catalog/rest"   // --catalog=rest
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	iceio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud" // s3:// warehouses
	"github.com/apache/iceberg-go/table"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for --catalog=postgres
	_ "modernc.org/sqlite"             // database/sql driver "sqlite" (pure Go), for --catalog=sql
)

// Catalog kinds (--catalog).
const (
	CatalogSQL      = "sql"
	CatalogPostgres = "postgres"
	CatalogHadoop   = "hadoop"
	CatalogREST     = "rest"
	CatalogGlue     = "glue"
)

// Catalogs lists the catalog kinds, for flag help and errors.
var Catalogs = []string{CatalogSQL, CatalogPostgres, CatalogHadoop, CatalogREST, CatalogGlue}

// DefaultCatalog is the catalog kind when none is given: embedded, no service.
const DefaultCatalog = CatalogSQL

// SQLiteFile is the SQLite catalog's file inside a local warehouse when
// --catalog-uri does not name one.
const SQLiteFile = "catalog.sqlite"

// WarehouseDir is the warehouse's place under the batch output when
// --iceberg-warehouse is not given.
const WarehouseDir = "iceberg"

// Options say where the tables live and which catalog registers them.
type Options struct {
	// Warehouse is a local directory or s3://bucket/prefix; the tables'
	// files go to <Warehouse>/<Namespace>/<table>/.
	Warehouse string
	// Catalog is one of Catalogs (default DefaultCatalog).
	Catalog string
	// CatalogURI is, per kind: sql, the SQLite file (default
	// <Warehouse>/catalog.sqlite, a local warehouse only); postgres, the
	// DSN (postgres://user@host/db; the password from PGPASSWORD or
	// ~/.pgpass, as for --warehouse); rest, the server's URL; hadoop and
	// glue take none.
	CatalogURI string
	// Namespace holds the tables (the batch job's topic prefix).
	Namespace string
}

// Check fills in the defaults and refuses what cannot work, before a run
// touches anything.
func (o *Options) Check() error {
	if o.Catalog == "" {
		o.Catalog = DefaultCatalog
	}
	if o.Warehouse == "" {
		return errors.New("iceberg: --iceberg-warehouse is required")
	}
	if o.Namespace == "" {
		return errors.New("iceberg: a namespace is required")
	}
	local := !strings.Contains(o.Warehouse, "://")
	if local {
		abs, err := filepath.Abs(o.Warehouse)
		if err != nil {
			return err
		}
		o.Warehouse = abs
	}
	switch o.Catalog {
	case CatalogSQL:
		if o.CatalogURI == "" {
			if !local {
				return fmt.Errorf("iceberg: --catalog=sql keeps its SQLite file on a local disk; give it with --catalog-uri=/path/catalog.sqlite for the warehouse %s, or use --catalog=postgres", o.Warehouse)
			}
			o.CatalogURI = filepath.Join(o.Warehouse, SQLiteFile)
		}
		if strings.Contains(o.CatalogURI, "://") {
			return fmt.Errorf("iceberg: --catalog=sql takes a local SQLite file, not %s", o.CatalogURI)
		}
	case CatalogPostgres, CatalogREST:
		if o.CatalogURI == "" {
			return fmt.Errorf("iceberg: --catalog=%s needs --catalog-uri", o.Catalog)
		}
	case CatalogHadoop:
		if !local {
			return fmt.Errorf("iceberg: --catalog=hadoop commits atomically only on a local filesystem; for the warehouse %s use --catalog=sql, postgres, rest or glue", o.Warehouse)
		}
	case CatalogGlue:
	default:
		return fmt.Errorf("iceberg: --catalog must be one of %s, not %q", strings.Join(Catalogs, ", "), o.Catalog)
	}
	return nil
}

// TableLocation is where a table's files live: <warehouse>/<namespace>/<table>.
func (o *Options) TableLocation(name string) string {
	return strings.TrimRight(o.Warehouse, "/") + "/" + o.Namespace + "/" + name
}

// Root is the directory holding the namespace's tables: the batch job
// writes a clean table's bucket files in Root/<table>/.
func (o *Options) Root() string { return strings.TrimRight(o.Warehouse, "/") + "/" + o.Namespace }

// props are the catalog's (and the tables' file IO's) properties.
func (o *Options) props() (iceberg.Properties, error) {
	p := iceberg.Properties{"warehouse": o.Warehouse}
	// The S3 endpoint the rest of pinpipe takes from the AWS SDK's
	// environment; iceberg-go's S3 IO reads its own property.
	for _, env := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(env); v != "" {
			p[iceio.S3EndpointURL] = v
			break
		}
	}
	switch o.Catalog {
	case CatalogSQL:
		if err := os.MkdirAll(filepath.Dir(o.CatalogURI), 0o755); err != nil {
			return nil, err
		}
		p["type"], p[sqlcat.DriverKey], p[sqlcat.DialectKey] = "sql", "sqlite", string(sqlcat.SQLite)
		// Commits (of the tables publishing at once, of two processes) wait
		// for each other rather than fail; the write-ahead log makes each
		// one a single sync.
		p["uri"] = "file:" + o.CatalogURI + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)"
	case CatalogPostgres:
		p["type"], p[sqlcat.DriverKey], p[sqlcat.DialectKey] = "sql", "pgx", string(sqlcat.Postgres)
		p["uri"] = o.CatalogURI
	case CatalogHadoop:
		p["type"] = string(catalog.Hadoop)
	case CatalogREST:
		p["type"], p["uri"] = string(catalog.REST), o.CatalogURI
	case CatalogGlue:
		p["type"] = string(catalog.Glue)
	}
	return p, nil
}

// Open opens the catalog and makes sure the namespace exists.
func Open(ctx context.Context, o Options) (catalog.Catalog, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	p, err := o.props()
	if err != nil {
		return nil, err
	}
	var cat catalog.Catalog
	if o.Catalog == CatalogSQL {
		cat, err = openSQLite(p)
	} else {
		cat, err = catalog.Load(ctx, "pinpipe", p)
	}
	if err != nil {
		return nil, fmt.Errorf("iceberg: opening the %s catalog: %w", o.Catalog, err)
	}
	ns := table.Identifier{o.Namespace}
	ok, err := cat.CheckNamespaceExists(ctx, ns)
	if err == nil && !ok {
		err = cat.CreateNamespace(ctx, ns, nil)
		if errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
			err = nil
		}
	}
	if err != nil {
		Close(cat)
		return nil, fmt.Errorf("iceberg: namespace %s: %w", o.Namespace, err)
	}
	return cat, nil
}

// sqliteCatalog is the SQL catalog on a SQLite file through one
// connection: SQLite has one writer at a time, and a second connection's
// transaction that must wait for it can fail at once (SQLITE_BUSY) rather
// than wait, so the tables publishing at once share the one connection.
type sqliteCatalog struct {
	*sqlcat.Catalog
	db *sql.DB
}

func openSQLite(p iceberg.Properties) (catalog.Catalog, error) {
	db, err := sql.Open(p[sqlcat.DriverKey], p["uri"])
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	cat, err := sqlcat.NewCatalog("pinpipe", db, sqlcat.SQLite, p)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &sqliteCatalog{cat, db}, nil
}

func (c *sqliteCatalog) Close() error {
	return errors.Join(c.Catalog.Close(), c.db.Close())
}

// Close releases a catalog's resources (its database connections).
func Close(cat catalog.Catalog) {
	if c, ok := cat.(catalog.Closer); ok {
		c.Close()
	}
}

// ident is a table's identifier in the namespace.
func (o *Options) ident(name string) table.Identifier { return table.Identifier{o.Namespace, name} }
