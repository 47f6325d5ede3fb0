package httpapi

import "github.com/gin-gonic/gin"

// roomRoutes registers the rooms API on g (authenticated, under /api/v1).
func (a *API) roomRoutes(g *gin.RouterGroup) {}
