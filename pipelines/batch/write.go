package batch

// Output formats of the clean tables.
const (
	FormatParquet = "parquet"
	FormatJSONL   = "jsonl"
	// FormatIceberg writes the tables as Parquet into an Iceberg warehouse
	// and publishes each run as the tables' next snapshots (io/icebergio).
	FormatIceberg = "iceberg"
)

// Formats are the formats of the clean tables, for flag help and errors.
var Formats = []string{FormatParquet, FormatJSONL, FormatIceberg}

// fileFormat is the format of the table files a run writes.
func fileFormat(format string) string {
	if format == FormatIceberg {
		return FormatParquet
	}
	return format
}
