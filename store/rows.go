package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// column is one column of a table expression built from Go values: its
// name, its SQL type, and its value in row i (a string, an int64, a bool,
// sql.NullString or sql.NullInt64).
type column struct {
	name, typ string
	value     func(i int) any
}

// rowsOf returns a table expression v of n rows with the given columns,
// and its arguments, to join or insert from (see rowsExpr).
func (s *Store) rowsOf(n int, cols ...column) (string, []any) {
	return s.rowsExpr(cols), s.rowsArgs(n, cols)
}

// rowsExpr is the table expression of rowsOf. Its text depends only on the
// columns, never on the number of rows, so a statement using it is parsed
// and planned once (see prepared). On PostgreSQL it is one unnest of a
// typed array per column; on SQLite json_each over one JSON array of rows,
// each an array of the columns' values.
func (s *Store) rowsExpr(cols []column) string {
	names := make([]string, len(cols))
	for j, c := range cols {
		names[j] = c.name
	}
	if s.engine == Postgres {
		params := make([]string, len(cols))
		for j, c := range cols {
			params[j] = "CAST(? AS " + c.typ + "[])"
		}
		return "unnest(" + strings.Join(params, ", ") + ") AS v(" + strings.Join(names, ", ") + ")"
	}
	sel := make([]string, len(cols))
	for j, name := range names {
		sel[j] = "value->>" + strconv.Itoa(j) + " AS " + name
	}
	return "(SELECT " + strings.Join(sel, ", ") + " FROM json_each(?)) AS v"
}

// rowsArgs are the arguments of rowsExpr for n rows.
func (s *Store) rowsArgs(n int, cols []column) []any {
	if s.engine == Postgres {
		args := make([]any, len(cols))
		for j, c := range cols {
			vals := make([]any, n)
			for i := range n {
				vals[i] = c.value(i)
			}
			args[j] = pq.GenericArray{A: vals}
		}
		return args
	}
	b := make([]byte, 0, 64*n*len(cols))
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, c := range cols {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, c.value(i))
		}
		b = append(b, ']')
	}
	b = append(b, ']')
	return []any{string(b)}
}

// appendJSON appends v, one of the column value types, as JSON.
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendJSONString(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case bool:
		if v {
			return append(b, '1') // SQLite has no booleans: 1 and 0
		}
		return append(b, '0')
	case sql.NullString:
		if !v.Valid {
			return append(b, "null"...)
		}
		return appendJSONString(b, v.String)
	case sql.NullInt64:
		if !v.Valid {
			return append(b, "null"...)
		}
		return strconv.AppendInt(b, v.Int64, 10)
	case nil:
		return append(b, "null"...)
	}
	panic(fmt.Sprintf("store: no JSON for a %T column value", v))
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 is replaced
// (the domain refuses it before it gets here).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// prepare prepares the append path's statements on the writer, before
// any transaction can hold SQLite's one writer connection.
func (s *Store) prepare(ctx context.Context) error {
	s.sql = s.buildAppendSQL()
	s.stmts = make(map[string]*sqlx.Stmt)
	for _, q := range s.sql.all() {
		st, err := s.w.PreparexContext(ctx, s.w.Rebind(q))
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// prepared returns the statement query, prepared at Open, bound to tx: a
// group's statements are parsed and planned once, not at every group. A
// statement not prepared at Open is prepared in tx (on SQLite a
// transaction holds the one writer connection).
func (s *Store) prepared(ctx context.Context, tx *sqlx.Tx, query string) (*sqlx.Stmt, error) {
	if st, ok := s.stmts[query]; ok {
		return tx.StmtxContext(ctx, st), nil
	}
	return tx.PreparexContext(ctx, tx.Rebind(query))
}

// selectPrepared runs a prepared statement returning rows into dest.
func (s *Store) selectPrepared(ctx context.Context, tx *sqlx.Tx, dest any, query string, args ...any) error {
	st, err := s.prepared(ctx, tx, query)
	if err != nil {
		return err
	}
	return st.SelectContext(ctx, dest, args...)
}

// execPrepared runs a prepared statement.
func (s *Store) execPrepared(ctx context.Context, tx *sqlx.Tx, query string, args ...any) error {
	st, err := s.prepared(ctx, tx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}
