package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

// tokenBody is the answer of a login, a guest or a visitor.
func tokenBody(t im.Token, now time.Time) wire.Token {
	return wire.Token{
		AccessToken: t.Token, TokenType: "Bearer", ExpiresIn: int64(t.ExpiresAt.Sub(now).Seconds()),
		UID: t.User.UID, Username: t.User.Username, Role: t.User.Role,
	}
}

func (a *API) register(c *gin.Context) (int, any, error) {
	req, err := request[wire.Credentials](c)
	if err != nil {
		return failed(err)
	}
	u, err := a.accounts.Register(c.Request.Context(), req.Username, req.Password)
	if err != nil {
		return failed(err)
	}
	return created(account(u, false))
}

func (a *API) login(c *gin.Context) (int, any, error) {
	req, err := request[wire.Credentials](c)
	if err != nil {
		return failed(err)
	}
	done, err := a.throttleLogin(c, req.Username)
	if err != nil {
		return failed(err)
	}
	t, err := a.accounts.Login(c.Request.Context(), req.Username, req.Password)
	done(err)
	if err != nil {
		return failed(err)
	}
	return answered(tokenBody(t, time.Now()))
}

func (a *API) guest(c *gin.Context) (int, any, error) {
	req, err := request[wire.GuestRequest](c)
	if err != nil {
		return failed(err)
	}
	t, err := a.accounts.Guest(c.Request.Context(), req.Name)
	if err != nil {
		return failed(err)
	}
	return created(tokenBody(t, time.Now()))
}

func (a *API) visitor(c *gin.Context) (int, any, error) {
	req, err := request[wire.VisitorRequest](c)
	if err != nil {
		return failed(err)
	}
	t, err := a.support.Visitor(c.Request.Context(), req.ShopID, req.ExternalID, req.Name, req.Hash)
	if err != nil {
		return failed(err)
	}
	return answered(tokenBody(t, time.Now()))
}

func (a *API) logout(c *gin.Context) (int, any, error) {
	if err := a.accounts.Logout(c.Request.Context(), principal(c)); err != nil {
		return failed(err)
	}
	return http.StatusNoContent, nil, nil
}

func (a *API) changePassword(c *gin.Context) (int, any, error) {
	req, err := request[wire.PasswordChange](c)
	if err != nil {
		return failed(err)
	}
	if err := a.accounts.ChangePassword(c.Request.Context(), principal(c), req.OldPassword, req.NewPassword); err != nil {
		return failed(err)
	}
	return http.StatusNoContent, nil, nil
}

func (a *API) me(c *gin.Context) (int, any, error) {
	u, err := a.accounts.User(c.Request.Context(), principal(c).UID)
	if err != nil {
		return failed(err)
	}
	return answered(account(u, true))
}

// findUsers is GET /users: by username (PROTOCOL §6), by uid (a list of
// names for the uids clients see), or, for admins, a search by q.
func (a *API) findUsers(c *gin.Context) (int, any, error) {
	var (
		users []im.User
		err   error
	)
	q := c.Request.URL.Query()
	switch {
	case q.Has("uid"):
		var uids []int64
		if uids, err = uidList(q["uid"]); err != nil {
			return failed(err)
		}
		users, err = a.accounts.ByID(c.Request.Context(), uids)
	case q.Has("q"):
		limit, lerr := intQuery(c, "limit")
		if lerr != nil {
			return failed(lerr)
		}
		if users, err = a.accounts.Search(c.Request.Context(), principal(c), q.Get("q"), int(min(limit, 1000))); err == nil {
			out := make([]wire.UserInfo, len(users))
			for i, u := range users {
				out[i] = wire.UserInfo{UID: u.UID, Username: u.Username, Name: u.Name, Role: u.Role, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
			}
			return answered(out)
		}
	default:
		users, err = a.accounts.Find(c.Request.Context(), q.Get("username"))
	}
	if err != nil {
		return failed(err)
	}
	out := make([]wire.Account, len(users))
	for i, u := range users {
		out[i] = account(u, false)
	}
	return answered(out)
}

// uidList parses uid=1&uid=2 or uid=1,2.
func uidList(vals []string) ([]int64, error) {
	var out []int64
	for _, v := range vals {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || n <= 0 {
				return nil, apiError(im.ErrInvalid, "uid must be positive integers")
			}
			out = append(out, n)
		}
	}
	return out, nil
}

func (a *API) disableUser(c *gin.Context) (int, any, error) { return a.setDisabled(c, true) }
func (a *API) enableUser(c *gin.Context) (int, any, error)  { return a.setDisabled(c, false) }

func (a *API) setDisabled(c *gin.Context, disabled bool) (int, any, error) {
	uid, err := idParam(c, "uid")
	if err != nil {
		return failed(err)
	}
	if err := a.accounts.SetDisabled(c.Request.Context(), principal(c), uid, disabled); err != nil {
		return failed(err)
	}
	return http.StatusNoContent, nil, nil
}
