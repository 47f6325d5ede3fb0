package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

// fail answers with the error envelope. This is the one place that turns
// errors into HTTP statuses and codes; anything that is not a domain error
// is a 500 whose details go to the log, never to the client.
func (a *API) fail(c *gin.Context, err error) {
	status, code := statusOf(err)
	msg := im.PublicMessage(err)
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "the server is too busy to answer in time: try again"
	}
	if status == http.StatusInternalServerError {
		a.log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "error", err)
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
	}
	c.AbortWithStatusJSON(status, wire.ErrorResponse{Error: wire.ErrorBody{Code: code, Message: msg}})
}

func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, im.ErrInvalid):
		return http.StatusBadRequest, wire.HTTPInvalidRequest
	case errors.Is(err, im.ErrUnauthorized):
		return http.StatusUnauthorized, wire.HTTPUnauthorized
	case errors.Is(err, im.ErrForbidden):
		return http.StatusForbidden, wire.HTTPForbidden
	case errors.Is(err, im.ErrNotFound):
		return http.StatusNotFound, wire.HTTPNotFound
	case errors.Is(err, im.ErrConflict):
		return http.StatusConflict, wire.HTTPConflict
	case errors.Is(err, im.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, wire.HTTPPayloadTooLarge
	case errors.Is(err, im.ErrRateLimited):
		return http.StatusTooManyRequests, wire.HTTPRateLimited
	case errors.Is(err, im.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		// Too busy: no hashing slot, or the request's time ran out
		// waiting (for the database, say).
		return http.StatusServiceUnavailable, wire.HTTPUnavailable
	}
	return http.StatusInternalServerError, wire.HTTPInternal
}

// apiError makes a domain error for failures found at the HTTP edge.
func apiError(kind error, msg string) error { return &im.Error{Kind: kind, Msg: msg} }
