package httpapi

import "github.com/gin-gonic/gin"

// shopRoutes registers the customer-service API on g (authenticated, under
// /api/v1): shops, agents, sessions, and PUT /me/status.
func (a *API) shopRoutes(g *gin.RouterGroup) {}
