package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/wire"
)

// roomRoutes registers the rooms API on g (authenticated, under /api/v1).
func (a *API) roomRoutes(g *gin.RouterGroup) {
	g.POST("/rooms", a.createRoom)
	g.GET("/rooms", a.rooms)
	g.GET("/rooms/:room_id", a.room)
	g.POST("/rooms/:room_id/join", a.joinRoom)
	g.POST("/rooms/:room_id/leave", a.leaveRoom)
	g.GET("/rooms/:room_id/members", a.roomMembers)
	g.POST("/rooms/:room_id/members", a.addRoomMember)
	g.DELETE("/rooms/:room_id/members/:uid", a.removeRoomMember)
}

func (a *API) createRoom(c *gin.Context) {
	var req wire.NewRoom
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	r, err := a.svc.CreateRoom(c.Request.Context(), principal(c), req.Name, req.Private)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, r)
}

func (a *API) rooms(c *gin.Context) {
	rooms, err := a.svc.Rooms(c.Request.Context(), principal(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, rooms)
}

func (a *API) room(c *gin.Context) {
	id, err := idParam(c, "room_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	r, err := a.svc.Room(c.Request.Context(), principal(c), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (a *API) joinRoom(c *gin.Context) {
	id, err := idParam(c, "room_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	r, err := a.svc.JoinRoom(c.Request.Context(), principal(c), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (a *API) leaveRoom(c *gin.Context) {
	id, err := idParam(c, "room_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	left, err := a.svc.LeaveRoom(c.Request.Context(), principal(c), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, left)
}

func (a *API) roomMembers(c *gin.Context) {
	id, err := idParam(c, "room_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	members, err := a.svc.RoomMembers(c.Request.Context(), principal(c), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, members)
}

func (a *API) addRoomMember(c *gin.Context) {
	id, err := idParam(c, "room_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	var req wire.AddMember
	if err := bind(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	m, err := a.svc.AddRoomMember(c.Request.Context(), principal(c), id, req.UID)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, m)
}

func (a *API) removeRoomMember(c *gin.Context) {
	id, err := idParam(c, "room_id")
	if err != nil {
		a.fail(c, err)
		return
	}
	uid, err := idParam(c, "uid")
	if err != nil {
		a.fail(c, err)
		return
	}
	left, err := a.svc.RemoveRoomMember(c.Request.Context(), principal(c), id, uid)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, left)
}
