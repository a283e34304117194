// Real frameworks through the real binary: the Flask, Django, Bottle and
// Falcon apps of examples/, all answering the same routes, driven the way a
// browser or an API client would.
package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// frameworkApps are the example apps and how gowsgi names their callable.
var frameworkApps = []struct {
	name   string
	module string
}{
	{name: "flask", module: "flask_app:app"},
	{name: "django", module: "django_app"},
	{name: "bottle", module: "bottle_app:app"},
	{name: "falcon", module: "falcon_app:app"},
}

// TestHelloWorldExample runs the README's start command:
// cd examples && gowsgi --module hello_world_app.
func TestHelloWorldExample(t *testing.T) {
	t.Parallel()
	app := harness.StartIn(t, harness.ExamplesDir(t), "--module", "hello_world_app")
	resp, body := harness.Get(t, app.URL+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Hello World!\n", string(body))
	assert.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	assert.Equal(t, "13", resp.Header.Get("Content-Length"))
}

// TestFrameworks needs a build against Debian's CPython, which imports the
// frameworks from Debian's python3-* packages (the default `make` build).
func TestFrameworks(t *testing.T) {
	t.Parallel()
	for _, fw := range frameworkApps {
		t.Run(fw.name, func(t *testing.T) {
			t.Parallel()
			app := harness.Start(t, "--pythonpath", harness.ExamplesDir(t), "--module", fw.module, "-p", "1", "--threads", "2")
			frameworkRoutes(t, app)
		})
	}
}

// frameworkRoutes checks every route the example apps share.
func frameworkRoutes(t *testing.T, app *harness.Instance) {
	t.Run("hello", func(t *testing.T) {
		resp, body := harness.Get(t, app.URL+"/")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "Hello World!\n", string(body))
	})

	t.Run("unicode path", func(t *testing.T) {
		resp, body := harness.Get(t, app.URL+"/greet/J%C3%BCrgen%20%E2%9C%93")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, "Hello, Jürgen ✓!", string(body))
	})

	t.Run("query string", func(t *testing.T) {
		resp, body := harness.Get(t, app.URL+"/search?q="+url.QueryEscape("wsgi & go = ♥")+"&page=2")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.JSONEq(t, `{"q": "wsgi & go = ♥", "page": "2"}`, string(body))
	})

	t.Run("form post", func(t *testing.T) {
		form := url.Values{"name": {"Zoë"}, "message": {"a+b=c & d"}}
		resp, err := harness.Client(false).PostForm(app.URL+"/form", form)
		require.NoError(t, err)
		body := readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.JSONEq(t, `{"name": "Zoë", "message": "a+b=c & d"}`, string(body))
	})

	t.Run("multipart upload of 5 MiB", func(t *testing.T) {
		data := make([]byte, 5<<20)
		_, err := rand.Read(data)
		require.NoError(t, err)
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		part, err := mw.CreateFormFile("file", "random.bin")
		require.NoError(t, err)
		_, err = part.Write(data)
		require.NoError(t, err)
		require.NoError(t, mw.Close())
		resp, err := harness.Client(false).Post(app.URL+"/upload", mw.FormDataContentType(), &buf)
		require.NoError(t, err)
		body := readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		sum := sha256.Sum256(data)
		var got struct {
			Filename string `json:"filename"`
			Size     int    `json:"size"`
			SHA256   string `json:"sha256"`
		}
		require.NoError(t, json.Unmarshal(body, &got), "%s", body)
		assert.Equal(t, "random.bin", got.Filename)
		assert.Equal(t, len(data), got.Size)
		assert.Equal(t, hex.EncodeToString(sum[:]), got.SHA256)
	})

	t.Run("json", func(t *testing.T) {
		payload := `{"items": [1, 2, 3], "name": "naïve"}`
		resp, err := harness.Client(false).Post(app.URL+"/json", "application/json", strings.NewReader(payload))
		require.NoError(t, err)
		body := readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.JSONEq(t, `{"received": `+payload+`}`, string(body))
	})

	t.Run("cookies", func(t *testing.T) {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		c := harness.Client(false)
		c.Jar = jar
		resp, _ := harness.Do(t, c, harness.MustRequest(t, http.MethodGet, app.URL+"/cookie/set", nil))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("Set-Cookie"), "flavour=oatmeal")
		resp, body := harness.Do(t, c, harness.MustRequest(t, http.MethodGet, app.URL+"/cookie/get", nil))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.JSONEq(t, `{"flavour": "oatmeal"}`, string(body))
	})

	t.Run("redirect", func(t *testing.T) {
		resp, _ := harness.Do(t, harness.Client(true), harness.MustRequest(t, http.MethodGet, app.URL+"/redirect", nil))
		assert.Equal(t, http.StatusFound, resp.StatusCode)
		assert.True(t, strings.HasSuffix(resp.Header.Get("Location"), "/greet/world"), "Location %q", resp.Header.Get("Location"))
		resp, body := harness.Get(t, app.URL+"/redirect")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "Hello, world!", string(body))
	})

	t.Run("not found", func(t *testing.T) {
		resp, _ := harness.Get(t, app.URL+"/no/such/page")
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	})

	t.Run("streaming", func(t *testing.T) {
		resp, body := harness.Get(t, app.URL+"/stream?lines=2000")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var want strings.Builder
		for i := 0; i < 2000; i++ {
			want.WriteString("line " + strconv.Itoa(i) + "\n")
		}
		assert.Equal(t, want.String(), string(body))
		assert.Equal(t, []string{"chunked"}, resp.TransferEncoding, "a body without Content-Length is streamed chunked")
	})
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err := buf.ReadFrom(resp.Body)
	require.NoError(t, err)
	return buf.Bytes()
}
