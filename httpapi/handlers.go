package httpapi

import (
	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

func (a *API) conversations(c *gin.Context) (int, any, error) {
	convs, err := a.chat.Conversations(c.Request.Context(), principal(c))
	if err != nil {
		return failed(err)
	}
	return answered(conversations(convs))
}

func (a *API) history(c *gin.Context) (int, any, error) {
	var q im.HistoryQuery
	var err error
	_, q.After = c.GetQuery("after_seq")
	if q.AfterSeq, err = intQuery(c, "after_seq"); err != nil {
		return failed(err)
	}
	if q.BeforeSeq, err = intQuery(c, "before_seq"); err != nil {
		return failed(err)
	}
	limit, err := intQuery(c, "limit")
	if err != nil {
		return failed(err)
	}
	q.Limit = int(min(limit, wire.MaxHistory))
	msgs, err := a.chat.History(c.Request.Context(), principal(c), c.Param("conv"), q)
	if err != nil {
		return failed(err)
	}
	return answered(envelopes(msgs))
}

func (a *API) postMessage(c *gin.Context) (int, any, error) {
	req, err := request[wire.Publish](c)
	if err != nil {
		return failed(err)
	}
	m, err := a.chat.Send(c.Request.Context(), principal(c), c.Param("conv"), req)
	if err != nil {
		return failed(err)
	}
	return created(m.Envelope())
}

func (a *API) markRead(c *gin.Context) (int, any, error) {
	req, err := request[struct {
		Seq *int64 `json:"seq"`
	}](c)
	if err != nil {
		return failed(err)
	}
	if req.Seq == nil {
		return failed(apiError(im.ErrInvalid, "seq is required"))
	}
	pos, err := a.chat.MarkRead(c.Request.Context(), principal(c), c.Param("conv"), *req.Seq)
	if err != nil {
		return failed(err)
	}
	return answered(readState(pos))
}

func (a *API) broadcast(c *gin.Context) (int, any, error) {
	req, err := request[struct {
		Text string `json:"text"`
	}](c)
	if err != nil {
		return failed(err)
	}
	m, err := a.chat.Broadcast(c.Request.Context(), principal(c), req.Text)
	if err != nil {
		return failed(err)
	}
	return created(m.Envelope())
}
