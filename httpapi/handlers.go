package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

func (a *API) register(c *gin.Context) {
	var req wire.Credentials
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	u, err := a.svc.Register(c.Request.Context(), req.Username, req.Password)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, wire.Account{UID: u.UID, Username: u.Username})
}

func (a *API) login(c *gin.Context) {
	var req wire.Credentials
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	done, err := a.throttleLogin(c, req.Username)
	if err != nil {
		a.fail(c, err)
		return
	}
	u, err := a.svc.Login(c.Request.Context(), req.Username, req.Password)
	done(err)
	if err != nil {
		a.fail(c, err)
		return
	}
	tok, err := a.tokens.Issue(im.Principal{UID: u.UID, Username: u.Username, Role: u.Role})
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.Token{
		AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(a.tokens.TTL().Seconds()),
		UID: u.UID, Username: u.Username, Role: u.Role,
	})
}

func (a *API) me(c *gin.Context) {
	u, err := a.svc.User(c.Request.Context(), principal(c).UID)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.Account{UID: u.UID, Username: u.Username, Role: u.Role})
}

func (a *API) conversations(c *gin.Context) {
	convs, err := a.svc.Conversations(c.Request.Context(), principal(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, convs)
}

func (a *API) history(c *gin.Context) {
	var q im.HistoryQuery
	var err error
	_, q.After = c.GetQuery("after_seq")
	if q.AfterSeq, err = intQuery(c, "after_seq"); err != nil {
		a.fail(c, err)
		return
	}
	if q.BeforeSeq, err = intQuery(c, "before_seq"); err != nil {
		a.fail(c, err)
		return
	}
	limit, err := intQuery(c, "limit")
	if err != nil {
		a.fail(c, err)
		return
	}
	q.Limit = int(min(limit, wire.MaxHistory))
	msgs, err := a.svc.History(c.Request.Context(), principal(c), c.Param("conv"), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, msgs)
}

func (a *API) postMessage(c *gin.Context) {
	var req wire.Publish
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	env, err := a.svc.Send(c.Request.Context(), principal(c), c.Param("conv"), req)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, env)
}

func (a *API) markRead(c *gin.Context) {
	var req struct {
		Seq *int64 `json:"seq"`
	}
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if req.Seq == nil {
		a.fail(c, apiError(im.ErrInvalid, "seq is required"))
		return
	}
	st, err := a.svc.MarkRead(c.Request.Context(), principal(c), c.Param("conv"), *req.Seq)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (a *API) broadcast(c *gin.Context) {
	var req struct {
		Text string `json:"text"`
	}
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	env, err := a.svc.Broadcast(c.Request.Context(), principal(c), req.Text)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, env)
}
