package smb

import (
	"encoding/binary"
	"math/bits"
)

// HashName names Bucket's hash in Layout: Iceberg's bucket transform of a
// long, murmur3_x86_32 (seed 0) of the value's 8 little-endian bytes.
const HashName = "iceberg-bucket-murmur3_x86_32"

// Bucket is Apache Iceberg's bucket[n] transform of a long key:
// (murmur3_x86_32(key as 8 bytes, little-endian) & MaxInt32) mod n. Every
// table uses it, so one post's rows always meet in the same bucket, and an
// engine that knows Iceberg's spec can find a key's bucket itself.
func Bucket(key int64, n int) int {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(key))
	return int((Murmur3(b[:]) & 0x7fffffff) % uint32(n))
}

// Murmur3 is MurmurHash3's x86 32-bit variant with seed 0, as Iceberg
// specifies it for bucketing.
func Murmur3(data []byte) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	var h uint32
	n := len(data)
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		data = data[4:]
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
