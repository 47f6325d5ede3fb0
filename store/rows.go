package store

import (
	"strings"

	"github.com/lib/pq"
)

// column is one column of a table expression built from Go values: its
// name, its SQL type, and its value in row i.
type column struct {
	name, typ string
	value     func(i int) any
}

// rowsOf returns a table expression v of n rows with the given columns,
// and its arguments, to join or insert from.
//
// On PostgreSQL it is one unnest of a typed array per column: a fixed
// number of parameters, so the statement is planned as quickly for 200
// rows as for one (a VALUES list or a UNION ALL of 200 rows takes
// milliseconds to plan). On SQLite, where planning is cheap and arrays do
// not exist, it is a UNION ALL of one SELECT per row.
func (s *Store) rowsOf(n int, cols ...column) (string, []any) {
	names := make([]string, len(cols))
	for j, c := range cols {
		names[j] = c.name
	}
	if s.engine == Postgres {
		params := make([]string, len(cols))
		args := make([]any, len(cols))
		for j, c := range cols {
			params[j] = "CAST(? AS " + c.typ + "[])"
			vals := make([]any, n)
			for i := range n {
				vals[i] = c.value(i)
			}
			args[j] = pq.GenericArray{A: vals}
		}
		return "unnest(" + strings.Join(params, ", ") + ") AS v(" + strings.Join(names, ", ") + ")", args
	}
	row := make([]string, len(cols))
	for j, c := range cols {
		row[j] = "CAST(? AS " + c.typ + ") AS " + c.name
	}
	selectRow := "SELECT " + strings.Join(row, ", ")
	selects := make([]string, n)
	args := make([]any, 0, n*len(cols))
	for i := range n {
		selects[i] = selectRow
		for _, c := range cols {
			args = append(args, c.value(i))
		}
	}
	return "(" + strings.Join(selects, " UNION ALL ") + ") AS v", args
}
