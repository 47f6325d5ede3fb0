package store

import (
	"context"
	"fmt"
	"strings"

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

// rowsExpr is a table expression v with the given columns, to join or
// insert from, whose rows are the arguments of a statement run by
// selectRows or execRows. Its text depends only on the columns, never on
// the number of rows, so a statement using it is parsed and planned once
// (see prepared). On PostgreSQL it is one unnest of a typed array per
// column, and the statement runs once for all the rows: one round trip.
// On SQLite, which runs in this process, it is one row of parameters, and
// the statement runs once per row: a prepared statement's step costs less
// than decoding the rows from one parameter.
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
		sel[j] = "? AS " + name
	}
	return "(SELECT " + strings.Join(sel, ", ") + ") AS v"
}

// arrayArgs are the arguments of rowsExpr on PostgreSQL for n rows: one
// array per column.
func arrayArgs(n int, cols []column) []any {
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

// rowArgs are the arguments of rowsExpr on SQLite for row i.
func rowArgs(i int, cols []column, args []any) []any {
	args = args[:0]
	for _, c := range cols {
		args = append(args, c.value(i))
	}
	return args
}

// selectRows runs query, a statement reading rowsExpr(cols), for n rows,
// and returns what it returns.
func selectRows[T any](ctx context.Context, s *Store, tx *sqlx.Tx, query string, n int, cols []column) ([]T, error) {
	st, err := s.prepared(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	var out []T
	if s.engine == Postgres {
		err := st.SelectContext(ctx, &out, arrayArgs(n, cols)...)
		return out, err
	}
	args := make([]any, 0, len(cols))
	for i := range n {
		var part []T
		if err := st.SelectContext(ctx, &part, rowArgs(i, cols, args)...); err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	return out, nil
}

// execRowsAt runs query, a statement of one row of parameters (SQLite),
// for row i of cols.
func execRowsAt(ctx context.Context, s *Store, tx *sqlx.Tx, query string, i int, cols []column) (int64, error) {
	st, err := s.prepared(ctx, tx, query)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(ctx, rowArgs(i, cols, nil)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execRows runs query, a statement reading rowsExpr(cols), for n rows,
// and returns how many rows it affected.
func execRows(ctx context.Context, s *Store, tx *sqlx.Tx, query string, n int, cols []column) (int64, error) {
	st, err := s.prepared(ctx, tx, query)
	if err != nil {
		return 0, err
	}
	if s.engine == Postgres {
		res, err := st.ExecContext(ctx, arrayArgs(n, cols)...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	args := make([]any, 0, len(cols))
	var total int64
	for i := range n {
		res, err := st.ExecContext(ctx, rowArgs(i, cols, args)...)
		if err != nil {
			return 0, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		total += k
	}
	return total, nil
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
