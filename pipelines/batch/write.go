package batch

// Output formats of the clean tables.
const (
	FormatParquet = "parquet"
	FormatJSONL   = "jsonl"
)
