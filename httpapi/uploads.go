package httpapi

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/uploads"
	"github.com/imserver/imserver/wire"
)

// uploadRoutes registers POST /api/v1/uploads on g (authenticated) and
// GET /uploads/{id}/{name} on r: anyone with the URL may fetch a file (its
// id is the capability).
func (a *API) uploadRoutes(r *gin.Engine, g *gin.RouterGroup) {
	if a.uploads == nil {
		return
	}
	g.POST("/uploads", a.handle(a.upload))
	r.GET("/uploads/:id/*name", a.download)
	r.HEAD("/uploads/:id/*name", a.download)
}

// transferTime is how long an upload or a download may take: the HTTP
// server's deadlines are made for REST bodies of 128 KiB, files may be
// megabytes long.
const transferTime = 5 * time.Minute

// upload streams the multipart field "file" to the upload store.
func (a *API) upload(c *gin.Context) (int, any, error) {
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Now().Add(transferTime))
	_ = rc.SetWriteDeadline(time.Now().Add(transferTime))
	// Room for the multipart framing around the largest file.
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, a.uploads.Max()+64<<10)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return failed(apiError(im.ErrInvalid, `the body must be multipart/form-data with the file in the field "file"`))
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return failed(apiError(im.ErrTooLarge, fmt.Sprintf("the file is over the limit of %d bytes", a.uploads.Max())))
			}
			return failed(apiError(im.ErrInvalid, `no field "file" in the form`))
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		u, err := a.uploads.Save(c.Request.Context(), principal(c).UID, part.FileName(), part)
		part.Close()
		if err != nil {
			return failed(err)
		}
		return created(wire.Upload{
			URL: a.publicURL(c) + uploadPath(u), Name: u.Name, Size: u.Size, ContentType: u.ContentType,
			Width: u.Width, Height: u.Height,
		})
	}
}

// uploadPath is where an upload is served: its id, then its name (only
// for people and for the browser's "save as").
func uploadPath(u im.Upload) string {
	return "/uploads/" + u.ID + "/" + url.PathEscape(u.Name)
}

// publicURL is the server's URL as clients reach it: the configured one,
// or the request's own.
func (a *API) publicURL(c *gin.Context) string {
	if a.public != "" {
		return a.public
	}
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host
}

// download serves an upload: raster images inline, everything else as an
// attachment, never sniffed by the browser, in a sandbox.
func (a *API) download(c *gin.Context) {
	u, f, err := a.uploads.Open(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	defer f.Close()
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(transferTime))
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	disposition := "attachment"
	if uploads.Inline(u.ContentType) {
		disposition = "inline"
		h.Set("Content-Type", u.ContentType)
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": u.Name}))
	if !strings.Contains(h.Get("Content-Disposition"), "filename") { // a name mime cannot encode
		h.Set("Content-Disposition", disposition)
	}
	http.ServeContent(c.Writer, c.Request, "", time.UnixMilli(u.CreatedAt), f)
}
