package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

// handlerFunc is a REST handler: it returns the status and the body of its
// answer, or an error.
type handlerFunc func(c *gin.Context) (status int, body any, err error)

// handle adapts h to gin: a body is written as JSON, a nil body answers
// with the status alone, and an error goes to fail.
func (a *API) handle(h handlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		status, body, err := h(c)
		switch {
		case err != nil:
			a.fail(c, err)
		case body == nil:
			c.Status(status)
		default:
			c.JSON(status, body)
		}
	}
}

// request binds the request body into a new T (see bind).
func request[T any](c *gin.Context) (T, error) {
	var v T
	err := bind(c, &v)
	return v, err
}

// idParam parses a positive integer path parameter.
func idParam(c *gin.Context, name string) (int64, error) {
	n, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || n <= 0 {
		return 0, apiError(im.ErrInvalid, name+" must be a positive integer")
	}
	return n, nil
}

// intQuery parses an optional non-negative integer query parameter.
func intQuery(c *gin.Context, name string) (int64, error) {
	s, ok := c.GetQuery(name)
	if !ok || s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, apiError(im.ErrInvalid, name+" must be a non-negative integer")
	}
	return n, nil
}

// The usual answers: 201 with a body, 200 with a body, and 200 {"ok":true}
// for actions that return nothing else.
func created(body any) (int, any, error)  { return http.StatusCreated, body, nil }
func answered(body any) (int, any, error) { return http.StatusOK, body, nil }
func done() (int, any, error)             { return http.StatusOK, wire.OK{OK: true}, nil }

// failed is the answer of a handler that failed.
func failed(err error) (int, any, error) { return 0, nil, err }
