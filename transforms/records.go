package transforms

import "time"

// Table names, as used in topic and stream names, output paths and the
// dead-letter output.
const (
	TablePin  = "pin"
	TableGeo  = "geo"
	TableUser = "user"
)

// Tables lists the three tables in their canonical order.
var Tables = []string{TablePin, TableGeo, TableUser}

// Pin is a clean row of the pin table. Nil pointers are SQL NULLs. Field order
// is the contract's column order.
type Pin struct {
	Ind            int64   `json:"ind" parquet:"ind"`
	UniqueID       *string `json:"unique_id" parquet:"unique_id,optional"`
	Title          *string `json:"title" parquet:"title,optional"`
	Description    *string `json:"description" parquet:"description,optional"`
	FollowerCount  *int64  `json:"follower_count" parquet:"follower_count,optional"`
	PosterName     *string `json:"poster_name" parquet:"poster_name,optional"`
	TagList        *string `json:"tag_list" parquet:"tag_list,optional"`
	IsImageOrVideo *string `json:"is_image_or_video" parquet:"is_image_or_video,optional"`
	ImageSrc       *string `json:"image_src" parquet:"image_src,optional"`
	SaveLocation   *string `json:"save_location" parquet:"save_location,optional"`
	Category       *string `json:"category" parquet:"category,optional"`
}

// Geo is a clean row of the geo table. Coordinates is [latitude, longitude],
// or nil when either is missing or unparsable.
type Geo struct {
	Ind         int64      `json:"ind" parquet:"ind"`
	Country     *string    `json:"country" parquet:"country,optional"`
	Coordinates []float64  `json:"coordinates" parquet:"coordinates,list,optional"`
	Timestamp   *time.Time `json:"timestamp" parquet:"timestamp,optional,timestamp(microsecond)"`
}

// User is a clean row of the user table.
type User struct {
	Ind        int64      `json:"ind" parquet:"ind"`
	UserName   *string    `json:"user_name" parquet:"user_name,optional"`
	Age        *int64     `json:"age" parquet:"age,optional"`
	DateJoined *time.Time `json:"date_joined" parquet:"date_joined,optional,timestamp(microsecond)"`
}

// DeadLetter is a rejected raw record: which table it was meant for, why it
// was rejected and its original bytes. PayloadBase64 is set, in addition to
// Payload, only when the bytes are not valid UTF-8, so nothing is lost.
type DeadLetter struct {
	Table         string `json:"table"`
	Reason        string `json:"reason"`
	Payload       string `json:"payload"`
	PayloadBase64 string `json:"payload_base64,omitempty"`
}
