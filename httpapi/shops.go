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
	g.PUT("/me/status", a.setStatus)
	g.POST("/shops", a.createShop)
	g.GET("/shops", a.listShops)
	g.GET("/shops/:shop_id", a.getShop)
	g.PATCH("/shops/:shop_id", a.updateShop)
	g.POST("/shops/:shop_id/agents", a.addAgent)
	g.DELETE("/shops/:shop_id/agents/:uid", a.removeAgent)
	g.GET("/shops/:shop_id/agents", a.listAgents)
	g.GET("/shops/:shop_id/sessions", a.listSessions)
	g.POST("/cs/sessions/:session_id/transfer", a.transfer)
	g.POST("/cs/sessions/:session_id/close", a.closeSession)
}

func shopJSON(v im.ShopView) wire.Shop {
	out := wire.Shop{ShopID: v.ID, Name: v.Name}
	if v.Settings {
		krs := make([]wire.KeywordReply, len(v.KeywordReplies))
		for i, kr := range v.KeywordReplies {
			krs[i] = wire.KeywordReply(kr)
		}
		out.WelcomeMessage, out.OfflineMessage, out.KeywordReplies = &v.WelcomeMessage, &v.OfflineMessage, &krs
		out.CreatedAt = v.CreatedAt
	}
	return out
}

func shopFields(in wire.ShopInput) im.ShopFields {
	f := im.ShopFields{Name: in.Name, WelcomeMessage: in.WelcomeMessage, OfflineMessage: in.OfflineMessage}
	if in.KeywordReplies != nil {
		krs := make([]im.KeywordReply, len(*in.KeywordReplies))
		for i, kr := range *in.KeywordReplies {
			krs[i] = im.KeywordReply(kr)
		}
		f.KeywordReplies = &krs
	}
	return f
}

func (a *API) setStatus(c *gin.Context) {
	var req wire.Status
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if err := a.svc.SetStatus(c.Request.Context(), principal(c), req.Status); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, req)
}

func (a *API) createShop(c *gin.Context) {
	var req wire.ShopInput
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	shop, err := a.svc.CreateShop(c.Request.Context(), principal(c), shopFields(req))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, shopJSON(im.ShopView{Shop: shop, Settings: true}))
}

func (a *API) listShops(c *gin.Context) {
	shops, err := a.svc.Shops(c.Request.Context(), principal(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]wire.Shop, len(shops))
	for i, s := range shops {
		out[i] = shopJSON(s)
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) getShop(c *gin.Context) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	shop, err := a.svc.ShopFor(c.Request.Context(), principal(c), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, shopJSON(shop))
}

func (a *API) updateShop(c *gin.Context) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	var req wire.ShopInput
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	shop, err := a.svc.UpdateShop(c.Request.Context(), principal(c), id, shopFields(req))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, shopJSON(im.ShopView{Shop: shop, Settings: true}))
}

func (a *API) addAgent(c *gin.Context) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	var req wire.UserRef
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if req.UID <= 0 {
		a.fail(c, apiError(im.ErrInvalid, "uid must be a positive integer"))
		return
	}
	if err := a.svc.AddAgent(c.Request.Context(), principal(c), id, req.UID); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.OK{OK: true})
}

func (a *API) removeAgent(c *gin.Context) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	uid, err := idParam(c, "uid")
	if err != nil {
		a.fail(c, err)
		return
	}
	if err := a.svc.RemoveAgent(c.Request.Context(), principal(c), id, uid); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.OK{OK: true})
}

func (a *API) listAgents(c *gin.Context) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	agents, err := a.svc.Agents(c.Request.Context(), principal(c), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]wire.ShopAgent, len(agents))
	for i, ag := range agents {
		out[i] = wire.ShopAgent{UID: ag.UID, Username: ag.Username, Online: ag.Online, Status: ag.Status, OpenSessions: ag.OpenSessions}
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) listSessions(c *gin.Context) {
	id, err := idParam(c, "shop_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	sessions, err := a.svc.Sessions(c.Request.Context(), principal(c), id, c.Query("status"))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]wire.CSSession, len(sessions))
	for i, s := range sessions {
		out[i] = wire.CSSession{SessionID: s.ID, ShopID: s.Shop, Customer: s.Customer, Status: s.Status, CreatedAt: s.CreatedAt}
		if s.Agent != 0 {
			agent := s.Agent
			out[i].Agent = &agent
		}
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) transfer(c *gin.Context) {
	id, err := idParam(c, "session_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	var req wire.Transfer
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if err := a.svc.Transfer(c.Request.Context(), principal(c), id, req.To); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.OK{OK: true})
}

func (a *API) closeSession(c *gin.Context) {
	id, err := idParam(c, "session_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	if err := a.svc.Close(c.Request.Context(), principal(c), id); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.OK{OK: true})
}
