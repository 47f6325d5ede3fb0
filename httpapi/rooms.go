package httpapi

import (
	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/wire"
)

// roomRoutes registers the rooms API on g (authenticated, under /api/v1).
func (a *API) roomRoutes(g *gin.RouterGroup) {
	g.POST("/rooms", a.handle(a.createRoom))
	g.GET("/rooms", a.handle(a.listRooms))
	g.GET("/rooms/public", a.handle(a.publicRooms))
	g.GET("/rooms/:room_id", a.handle(a.getRoom))
	g.POST("/rooms/:room_id/join", a.handle(a.joinRoom))
	g.POST("/rooms/:room_id/leave", a.handle(a.leaveRoom))
	g.GET("/rooms/:room_id/members", a.handle(a.roomMembers))
	g.POST("/rooms/:room_id/members", a.handle(a.addRoomMember))
	g.DELETE("/rooms/:room_id/members/:uid", a.handle(a.removeRoomMember))
}

func (a *API) createRoom(c *gin.Context) (int, any, error) {
	req, err := request[wire.NewRoom](c)
	if err != nil {
		return failed(err)
	}
	r, err := a.rooms.Create(c.Request.Context(), principal(c), req.Name, req.Private)
	if err != nil {
		return failed(err)
	}
	return created(room(r))
}

func (a *API) listRooms(c *gin.Context) (int, any, error) {
	rs, err := a.rooms.Of(c.Request.Context(), principal(c))
	if err != nil {
		return failed(err)
	}
	return answered(rooms(rs))
}

func (a *API) publicRooms(c *gin.Context) (int, any, error) {
	limit, err := intQuery(c, "limit")
	if err != nil {
		return failed(err)
	}
	rs, err := a.rooms.Public(c.Request.Context(), c.Query("q"), int(min(limit, 1000)))
	if err != nil {
		return failed(err)
	}
	return answered(publicRooms(rs))
}

func (a *API) getRoom(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "room_id")
	if err != nil {
		return failed(err)
	}
	r, err := a.rooms.Get(c.Request.Context(), principal(c), id)
	if err != nil {
		return failed(err)
	}
	return answered(room(r))
}

func (a *API) joinRoom(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "room_id")
	if err != nil {
		return failed(err)
	}
	r, err := a.rooms.Join(c.Request.Context(), principal(c), id)
	if err != nil {
		return failed(err)
	}
	return answered(room(r))
}

func (a *API) leaveRoom(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "room_id")
	if err != nil {
		return failed(err)
	}
	d, err := a.rooms.Leave(c.Request.Context(), principal(c), id)
	if err != nil {
		return failed(err)
	}
	return answered(departure(d))
}

func (a *API) roomMembers(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "room_id")
	if err != nil {
		return failed(err)
	}
	ms, err := a.rooms.Members(c.Request.Context(), principal(c), id)
	if err != nil {
		return failed(err)
	}
	return answered(members(ms))
}

func (a *API) addRoomMember(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "room_id")
	if err != nil {
		return failed(err)
	}
	req, err := request[wire.AddMember](c)
	if err != nil {
		return failed(err)
	}
	m, err := a.rooms.AddMember(c.Request.Context(), principal(c), id, req.UID)
	if err != nil {
		return failed(err)
	}
	return answered(member(m))
}

func (a *API) removeRoomMember(c *gin.Context) (int, any, error) {
	id, err := idParam(c, "room_id")
	if err != nil {
		return failed(err)
	}
	uid, err := idParam(c, "uid")
	if err != nil {
		return failed(err)
	}
	d, err := a.rooms.RemoveMember(c.Request.Context(), principal(c), id, uid)
	if err != nil {
		return failed(err)
	}
	return answered(departure(d))
}
