package publisher

import (
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
	kafkalz4 "github.com/segmentio/kafka-go/compress/lz4"
	kafkazstd "github.com/segmentio/kafka-go/compress/zstd"
)

// kafka-go compresses produce requests with the writers of its global codec table
// (compress.Codecs): a Writer names a codec by its number only, so the writers cannot be chosen per
// Writer. Its own writers are sized for long streams (an lz4 writer holds 4 MiB blocks, a zstd
// encoder an 8 MiB window, one per partition being written, kept in pools), while a produce request
// of this publisher holds at most BatchBytes per partition: most of those buffers stay empty, and
// they dominate the heap of a backfill (docs/BENCHMARKS.md).

// RegisterCodecs replaces the lz4 and zstd writers of kafka-go's global codec table with ones that
// produce the same formats with smaller buffers: lz4 frames of 64 KiB blocks (the Java client's
// block size; an lz4 match never reaches further back than 64 KiB anyway) and zstd frames with a
// window of DefaultBatchBytes, which spans a whole produce request, so the ratio does not change.
// Decompression stays with kafka-go's readers, which read any block or window size.
//
// The table is process-wide, so this changes every kafka-go writer in the process, in the same
// compatible way. Call it once at start, before the first Writer writes (followpub's main does);
// without it, publishing works the same, with kafka-go's larger buffers. It is safe to call more
// than once and from several goroutines.
func RegisterCodecs() { registerCodecs() }

var registerCodecs = sync.OnceFunc(func() {
	compress.Codecs[compress.Lz4] = &lz4Codec{}
	compress.Codecs[compress.Zstd] = &zstdCodec{}
})

// lz4Codec is kafka-go's lz4 codec with 64 KiB blocks.
type lz4Codec struct {
	kafkalz4.Codec // Code, Name, NewReader
	pool           sync.Pool
}

// NewWriter implements compress.Codec.
func (c *lz4Codec) NewWriter(w io.Writer) io.WriteCloser {
	z, _ := c.pool.Get().(*lz4.Writer)
	if z == nil {
		z = lz4.NewWriter(w)
		// The options of NewWriter, but the block size; Reset keeps them.
		_ = z.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
	} else {
		z.Reset(w)
	}
	return &lz4Writer{Writer: z, pool: &c.pool}
}

type lz4Writer struct {
	*lz4.Writer
	pool *sync.Pool
}

func (w *lz4Writer) Close() error {
	z := w.Writer
	if z == nil {
		return nil
	}
	w.Writer = nil
	err := z.Close()
	z.Reset(nil) // returns the block buffer to lz4's pool, drops w
	w.pool.Put(z)
	return err
}

// zstdWindow is the window of the zstd encoder: DefaultBatchBytes, the most one produce request
// compresses for a partition.
const zstdWindow = DefaultBatchBytes

// zstdCodec is kafka-go's zstd codec (level 3, one goroutine per encoder) with a 1 MiB window and
// the encoder's low-memory mode.
type zstdCodec struct {
	kafkazstd.Codec // Code, Name, NewReader
	pool            sync.Pool
}

// NewWriter implements compress.Codec.
func (c *zstdCodec) NewWriter(w io.Writer) io.WriteCloser {
	enc, _ := c.pool.Get().(*zstd.Encoder)
	if enc == nil {
		var err error
		enc, err = zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(3)),
			zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true),
			zstd.WithWindowSize(zstdWindow),
			zstd.WithLowerEncoderMem(true),
		)
		if err != nil {
			return &zstdWriter{err: err}
		}
	} else {
		enc.Reset(w)
	}
	return &zstdWriter{enc: enc, pool: &c.pool}
}

type zstdWriter struct {
	enc  *zstd.Encoder
	pool *sync.Pool
	err  error
}

func (w *zstdWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.enc == nil {
		return 0, io.ErrClosedPipe
	}
	return w.enc.Write(p)
}

// ReadFrom implements io.ReaderFrom, which kafka-go uses when it can.
func (w *zstdWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.enc == nil {
		return 0, io.ErrClosedPipe
	}
	return w.enc.ReadFrom(r)
}

func (w *zstdWriter) Close() error {
	if w.enc == nil {
		return w.err
	}
	// Close writes the end of the frame; the encoder can be reused after Reset.
	err := w.enc.Close()
	w.enc.Reset(discard{}) // do not retain w
	w.pool.Put(w.enc)
	w.enc = nil
	return err
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
