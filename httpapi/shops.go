package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

// shopRoutes registers the customer-service API on g (authenticated, under
// /api/v1): shops, agents, sessions, and PUT /me/status.
func (a *API) shopRoutes(g *gin.RouterGroup) {
	g.PUT("/me/status", a.handle(a.setStatus))
	g.POST("/shops", a.handle(a.createShop))
	g.GET("/shops", a.handle(a.listShops))
	g.GET("/shops/:shop_id", a.handle(a.getShop))
	g.PATCH("/shops/:shop_id", a.handle(a.updateShop))
	g.POST("/shops/:shop_id/agents", a.handle(a.addAgent))
	g.DELETE("/shops/:shop_id/agents/:uid", a.handle(a.removeAgent))
	g.GET("/shops/:shop_id/agents", a.handle(a.listAgents))
	g.GET("/shops/:shop_id/sessions", a.handle(a.listSessions))
	g.POST("/cs/sessions/:session_id/transfer", a.handle(a.transfer))
	g.POST("/cs/sessions/:session_id/close", a.handle(a.closeSession))
	g.POST("/cs/sessions/:session_id/take", a.handle(a.take))
	g.GET("/shops/:shop_id/identity-secret", a.handle(a.identitySecret))
	g.GET("/shops/:shop_id/canned", a.handle(a.listCanned))
	g.POST("/shops/:shop_id/canned", a.handle(a.createCanned))
	g.PATCH("/shops/:shop_id/canned/:canned_id", a.handle(a.updateCanned))
	g.DELETE("/shops/:shop_id/canned/:canned_id", a.handle(a.deleteCanned))
	g.GET("/shops/:shop_id/customers/:uid", a.handle(a.customer))
}

func (a *API) setStatus(c *gin.Context) (int, any, error) {
	req, err := request[wire.Status](c)
	if err != nil {
		return failed(err)
	}
	if err := a.support.SetStatus(c.Request.Context(), principal(c), req.Status); err != nil {
		return failed(err)
	}
	return answered(req)
}

func (a *API) createShop(c *gin.Context) (int, any, error) {
	req, err := request[wire.ShopInput](c)
	if err != nil {
		return failed(err)
	}
	s, err := a.support.CreateShop(c.Request.Context(), principal(c), shopFields(req))
	if err != nil {
		return failed(err)
	}
	return created(shop(im.ShopView{Shop: s, Settings: true}))
}

func (a *API) listShops(c *gin.Context) (int, any, error) {
	vs, err := a.support.Shops(c.Request.Context(), principal(c))
	if err != nil {
		return failed(err)
	}
	return answered(shops(vs))
}

func (a *API) getShop(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	v, err := a.support.Shop(c.Request.Context(), principal(c), id)
	if err != nil {
		return failed(err)
	}
	return answered(shop(v))
}

func (a *API) updateShop(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	req, err := request[wire.ShopInput](c)
	if err != nil {
		return failed(err)
	}
	s, err := a.support.UpdateShop(c.Request.Context(), principal(c), id, shopFields(req))
	if err != nil {
		return failed(err)
	}
	return answered(shop(im.ShopView{Shop: s, Settings: true}))
}

func (a *API) addAgent(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	req, err := request[wire.UserRef](c)
	if err != nil {
		return failed(err)
	}
	if req.UID <= 0 {
		return failed(apiError(im.ErrInvalid, "uid must be a positive integer"))
	}
	if err := a.support.AddAgent(c.Request.Context(), principal(c), id, req.UID); err != nil {
		return failed(err)
	}
	return done()
}

func (a *API) removeAgent(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	uid, err := idParam(c, "uid")
	if err != nil {
		return failed(err)
	}
	if err := a.support.RemoveAgent(c.Request.Context(), principal(c), id, uid); err != nil {
		return failed(err)
	}
	return done()
}

func (a *API) listAgents(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	as, err := a.support.Agents(c.Request.Context(), principal(c), id)
	if err != nil {
		return failed(err)
	}
	return answered(agents(as))
}

func (a *API) listSessions(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	ts, err := a.support.Tickets(c.Request.Context(), principal(c), id, c.Query("status"))
	if err != nil {
		return failed(err)
	}
	return answered(tickets(ts))
}

func (a *API) transfer(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "session_id")
	if err != nil {
		return failed(err)
	}
	req, err := request[wire.Transfer](c)
	if err != nil {
		return failed(err)
	}
	if err := a.support.Transfer(c.Request.Context(), principal(c), id, req.To); err != nil {
		return failed(err)
	}
	return done()
}

func (a *API) closeSession(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "session_id")
	if err != nil {
		return failed(err)
	}
	if err := a.support.Close(c.Request.Context(), principal(c), id); err != nil {
		return failed(err)
	}
	return done()
}

func (a *API) take(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "session_id")
	if err != nil {
		return failed(err)
	}
	if err := a.support.Take(c.Request.Context(), principal(c), id); err != nil {
		return failed(err)
	}
	return done()
}

func (a *API) identitySecret(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	secret, err := a.support.IdentitySecret(c.Request.Context(), principal(c), id)
	if err != nil {
		return failed(err)
	}
	return answered(wire.IdentitySecret{IdentitySecret: secret})
}

func (a *API) listCanned(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	cs, err := a.support.CannedReplies(c.Request.Context(), principal(c), id)
	if err != nil {
		return failed(err)
	}
	return answered(cannedReplies(cs))
}

func (a *API) createCanned(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	req, err := request[wire.CannedInput](c)
	if err != nil {
		return failed(err)
	}
	if req.Shortcut == nil || req.Text == nil {
		return failed(apiError(im.ErrInvalid, "shortcut and text are required"))
	}
	cr, err := a.support.CreateCannedReply(c.Request.Context(), principal(c), im.CannedReply{Shop: id, Shortcut: *req.Shortcut, Text: *req.Text})
	if err != nil {
		return failed(err)
	}
	return created(cannedReply(cr))
}

func (a *API) updateCanned(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	cid, err := idParam(c, "canned_id")
	if err != nil {
		return failed(err)
	}
	req, err := request[wire.CannedInput](c)
	if err != nil {
		return failed(err)
	}
	cr, err := a.support.UpdateCannedReply(c.Request.Context(), principal(c), id, cid, req.Shortcut, req.Text)
	if err != nil {
		return failed(err)
	}
	return answered(cannedReply(cr))
}

func (a *API) deleteCanned(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	cid, err := idParam(c, "canned_id")
	if err != nil {
		return failed(err)
	}
	if err := a.support.DeleteCannedReply(c.Request.Context(), principal(c), id, cid); err != nil {
		return failed(err)
	}
	return done()
}

// setContext is PUT /shops/{id}/context: the page a customer writes from.
func (a *API) setContext(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	req, err := request[wire.PageContext](c)
	if err != nil {
		return failed(err)
	}
	if err := a.support.SetPage(c.Request.Context(), principal(c), id, req.URL, req.Title); err != nil {
		return failed(err)
	}
	return http.StatusNoContent, nil, nil
}

func (a *API) customer(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		return failed(err)
	}
	uid, err := idParam(c, "uid")
	if err != nil {
		return failed(err)
	}
	cust, err := a.support.Customer(c.Request.Context(), principal(c), id, uid)
	if err != nil {
		return failed(err)
	}
	return answered(customer(cust))
}
