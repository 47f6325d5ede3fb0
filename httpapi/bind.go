package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

// maxBody bounds every request body: a message is at most 64 KiB, and the
// rest is headroom for its JSON wrapping.
const maxBody = 128 << 10

// bind decodes the request body into v, a pointer to a struct with json
// tags. JSON bodies are decoded as they are; form bodies
// (application/x-www-form-urlencoded, for curl -d) are mapped onto the same
// fields by their json names, converting numbers and booleans, and taking a
// JSON text for fields that are objects or lists. An empty body leaves v as
// it is.
func bind(c *gin.Context, v any) error {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBody)
	ct, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data" {
		if err := c.Request.ParseMultipartForm(maxBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			return bodyError(err)
		}
		return bindForm(c.Request.PostForm, v)
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		return bodyError(err)
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil
	}
	if !wire.ValidText(body) {
		// The decoder would turn it into U+FFFD: store nothing the
		// client did not write.
		return apiError(im.ErrInvalid, "request body is not valid UTF-8 text")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return apiError(im.ErrInvalid, "request body is not valid JSON: "+jsonProblem(err))
	}
	return nil
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return apiError(im.ErrTooLarge, fmt.Sprintf("request body is over %d bytes", maxBody))
	}
	return apiError(im.ErrInvalid, "cannot read the request body")
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s", te.Field, kindName(te.Type))
		}
		return "expected a JSON object"
	}
	return "malformed JSON"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "of another type"
}

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

func bindForm(form map[string][]string, v any) error {
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		vals, ok := form[name]
		if name == "" || name == "-" || !ok || len(vals) == 0 {
			continue
		}
		s := vals[0]
		if !utf8.ValidString(s) {
			return apiError(im.ErrInvalid, fmt.Sprintf("field %q is not valid UTF-8 text", name))
		}
		fv := rv.Field(i)
		if err := setFormValue(fv, s); err != nil {
			return apiError(im.ErrInvalid, fmt.Sprintf("field %q: %v", name, err))
		}
	}
	return nil
}

func setFormValue(fv reflect.Value, s string) error {
	if fv.Type() == rawMessageType {
		// A form value is text: a message body "hello" is the JSON string.
		if t := strings.TrimSpace(s); strings.HasPrefix(t, "{") && json.Valid([]byte(t)) {
			fv.SetBytes([]byte(t))
			return nil
		}
		b, _ := json.Marshal(s)
		fv.SetBytes(b)
		return nil
	}
	if fv.Kind() == reflect.Pointer {
		p := reflect.New(fv.Type().Elem())
		if err := setFormValue(p.Elem(), s); err != nil {
			return err
		}
		fv.Set(p)
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return errors.New("must be an integer")
		}
		fv.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return errors.New("must be true or false")
		}
		fv.SetBool(b)
	default: // lists and objects: a JSON text
		if err := json.Unmarshal([]byte(s), fv.Addr().Interface()); err != nil {
			return errors.New("must be JSON " + kindName(fv.Type()))
		}
	}
	return nil
}
