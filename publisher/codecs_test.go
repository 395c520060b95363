package publisher

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/segmentio/kafka-go/compress"
	kafkalz4 "github.com/segmentio/kafka-go/compress/lz4"
	kafkazstd "github.com/segmentio/kafka-go/compress/zstd"
)

// payload returns n bytes of JSON-like records, compressible as real ones are.
func payload(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"follow_user_id":"wx_user%d","content":"系统自动跟进:客户状态变更 %d","follow_time":%d}`, 1700000000000000+i*7919, i%13, i, 1707292800000+i*997)
	}
	return b.Bytes()[:n]
}

// TestRegisterCodecs checks which writers kafka-go's table holds after the call: the publisher's
// lz4 and zstd writers, kafka-go's own for the other codecs, and the same ones after a second call
// (so their pools survive it).
func TestRegisterCodecs(t *testing.T) {
	RegisterCodecs()
	lz4c, zstdc := compress.Lz4.Codec(), compress.Zstd.Codec()
	if _, ok := lz4c.(*lz4Codec); !ok {
		t.Errorf("lz4: kafka-go's table holds %T, want *lz4Codec", lz4c)
	}
	if _, ok := zstdc.(*zstdCodec); !ok {
		t.Errorf("zstd: kafka-go's table holds %T, want *zstdCodec", zstdc)
	}
	for _, c := range []compress.Compression{compress.Gzip, compress.Snappy} {
		switch c.Codec().(type) {
		case *lz4Codec, *zstdCodec:
			t.Errorf("%s: replaced by %T", c, c.Codec())
		}
	}
	RegisterCodecs()
	if compress.Lz4.Codec() != lz4c || compress.Zstd.Codec() != zstdc {
		t.Error("a second RegisterCodecs replaced the writers again")
	}
}

// TestCodecsRoundTrip compresses with the installed writers and decompresses with kafka-go's own
// readers, at sizes around the block and window boundaries and beyond one produce request.
func TestCodecsRoundTrip(t *testing.T) {
	RegisterCodecs()
	for _, c := range []compress.Compression{compress.Lz4, compress.Zstd} {
		codec := c.Codec()
		switch codec.(type) {
		case *lz4Codec, *zstdCodec:
		default:
			t.Fatalf("%s: kafka-go's table holds %T, not the publisher's writer", c, codec)
		}
		for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 300 << 10, 1 << 20, 3 << 20} {
			t.Run(fmt.Sprintf("%s/%d", c, n), func(t *testing.T) {
				src := payload(n)
				for range 2 { // the second time with a writer from the pool
					var buf bytes.Buffer
					w := codec.NewWriter(&buf)
					if _, err := w.Write(src); err != nil {
						t.Fatal(err)
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					if n > 4096 && buf.Len() > n/2 {
						t.Errorf("%d bytes compressed to %d", n, buf.Len())
					}
					var r io.ReadCloser
					if c == compress.Lz4 {
						r = (&kafkalz4.Codec{}).NewReader(&buf)
					} else {
						r = (&kafkazstd.Codec{}).NewReader(&buf)
					}
					got, err := io.ReadAll(r)
					_ = r.Close()
					if err != nil || !bytes.Equal(got, src) {
						t.Fatalf("round trip of %d bytes: got %d bytes, %v", n, len(got), err)
					}
				}
			})
		}
	}
}

// TestLz4FrameBlockSize checks the frame descriptor: block maximum size 64 KiB (BD byte code 4).
func TestLz4FrameBlockSize(t *testing.T) {
	RegisterCodecs()
	var buf bytes.Buffer
	w := compress.Lz4.Codec().NewWriter(&buf)
	_, _ = w.Write(payload(200 << 10))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b) < 6 || !bytes.Equal(b[:4], []byte{0x04, 0x22, 0x4d, 0x18}) {
		t.Fatalf("not an lz4 frame: % x", b[:min(len(b), 8)])
	}
	if code := b[5] >> 4 & 7; code != 4 {
		t.Errorf("block maximum size code %d, want 4 (64 KiB)", code)
	}
}

// TestZstdMemory checks that a new zstd writer allocates well below what kafka-go's own encoder
// does for its 8 MiB window. (The lz4 writer's buffers are its block size, which
// TestLz4FrameBlockSize checks.)
func TestZstdMemory(t *testing.T) {
	src := payload(300 << 10)
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := (&zstdCodec{}).NewWriter(io.Discard) // a fresh codec: nothing from its pool
			_, _ = w.Write(src)
			_ = w.Close()
		}
	})
	if per := r.AllocedBytesPerOp(); per > 6<<20 {
		t.Errorf("a new zstd writer compressing 300 KiB allocates %d bytes, want under 6 MiB", per)
	}
}
