package parquet

import (
	"fmt"
	"io"
	"reflect"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// WriteColumn is one column of a table to write; exactly one of Text,
// Float and Int is set, with a value for every row.
type WriteColumn struct {
	Name  string
	Text  func(row int) string
	Float []float32
	Int   []int64
}

// RowGroupRows is how many rows Write puts in each row group: small enough
// that readers decode several in parallel with little memory, large enough
// that each column chunk compresses well.
const RowGroupRows = 1 << 17

// Write writes a table as one Parquet file: the columns in the given order,
// required (no nulls), text dictionary-encoded, zstd-compressed.
func Write(w io.Writer, rows int, cols []WriteColumn) error {
	g := orderedGroup{Group: parquet.Group{}}
	for _, c := range cols {
		var n parquet.Node
		switch {
		case c.Text != nil:
			n = parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
		case c.Float != nil:
			n = parquet.Leaf(parquet.FloatType)
		case c.Int != nil:
			n = parquet.Int(64)
		default:
			return fmt.Errorf("parquet: column %q has no values", c.Name)
		}
		if _, dup := g.Group[c.Name]; dup {
			return fmt.Errorf("parquet: column %q twice", c.Name)
		}
		g.Group[c.Name] = n
		g.names = append(g.names, c.Name)
	}
	pw := parquet.NewWriter(w, parquet.NewSchema("msrtrain", g),
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.MaxRowsPerRowGroup(RowGroupRows))
	const batch = 4096
	buf := make([]parquet.Row, batch)
	var text [][]byte
	for start := 0; start < rows; start += batch {
		n := min(batch, rows-start)
		text = text[:0]
		for r := range n {
			row := buf[r][:0]
			for j, c := range cols {
				i := start + r
				var v parquet.Value
				switch {
				case c.Text != nil:
					text = append(text, []byte(c.Text(i)))
					v = parquet.ByteArrayValue(text[len(text)-1])
				case c.Float != nil:
					v = parquet.FloatValue(c.Float[i])
				default:
					v = parquet.Int64Value(c.Int[i])
				}
				row = append(row, v.Level(0, 0, j))
			}
			buf[r] = row
		}
		if _, err := pw.WriteRows(buf[:n]); err != nil {
			return err
		}
	}
	return pw.Close()
}

// orderedGroup is a parquet.Group whose columns keep the order they were
// given in (parquet.Group sorts them by name).
type orderedGroup struct {
	parquet.Group
	names []string
}

func (g orderedGroup) Fields() []parquet.Field {
	out := make([]parquet.Field, len(g.names))
	for i, n := range g.names {
		out[i] = field{Node: g.Group[n], name: n}
	}
	return out
}

type field struct {
	parquet.Node
	name string
}

func (f field) Name() string { return f.name }

// Value is for writers of Go structs; Write writes rows.
func (f field) Value(reflect.Value) reflect.Value { return reflect.Value{} }
