// Static files (uWSGI's --static-map MOUNT=DIR): the master answers a
// request under a mapped mount point from the folder itself, with
// sendfile(2), before any worker sees it, for every gateway; a file the
// folder does not have is left to the app, as in uWSGI. It never serves
// anything outside the folder: a ".." segment is refused, and so is a file
// whose real path (symlinks resolved) leaves the folder.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

// StaticMap maps the URL prefix Mount to the folder Dir.
type StaticMap struct {
	Mount string
	Dir   string
	// Option names the option that asked for it in errors; "" is
	// --static-map. --check-static DIR is the mapping of the whole site.
	Option string
}

// option is the option that asked for the mapping, for errors.
func (m StaticMap) option() string {
	if m.Option == "" {
		return "--static-map " + m.Mount + "=" + m.Dir
	}
	return m.Option + " " + m.Dir
}

// ParseStaticMap reads uWSGI's "MOUNT=DIR" form of --static-map.
func ParseStaticMap(spec string) (StaticMap, error) {
	mount, dir, ok := strings.Cut(spec, "=")
	if !ok || !strings.HasPrefix(mount, "/") || dir == "" {
		return StaticMap{}, fmt.Errorf("--static-map %q is not MOUNT=DIR with MOUNT starting with /", spec)
	}
	return StaticMap{Mount: strings.TrimRight(mount, "/"), Dir: dir}, nil
}

// staticRoot is a mapping with its folder resolved once, at start.
type staticRoot struct {
	mount string
	dir   string // absolute, symlinks resolved
}

// staticHandler serves the mapped folders and passes every other request on.
type staticHandler struct {
	roots []staticRoot
	next  wsgi.Handler
	// gzipAll and gzipDirs say which files have a FILE.gz sibling to
	// send instead to a client that accepts gzip: all, or those whose real
	// path starts with one of gzipDirs (uWSGI's --static-gzip-all and
	// --static-gzip-dir).
	gzipAll  bool
	gzipDirs []string
	// expires are the --static-expires* rules (static_expires.go).
	expires []ExpiresRule
}

// newStaticHandler resolves each folder; a folder that does not exist is an
// error at start rather than a 404 on every request.
func newStaticHandler(maps []StaticMap, next wsgi.Handler) (*staticHandler, error) {
	h := &staticHandler{next: next}
	for _, m := range maps {
		dir, err := filepath.Abs(m.Dir)
		if err == nil {
			dir, err = filepath.EvalSymlinks(dir)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.option(), err)
		}
		h.roots = append(h.roots, staticRoot{mount: m.Mount, dir: dir})
	}
	return h, nil
}

// ServeWSGI answers a request under a mount from its folder when the file
// is there. As in uWSGI, the mappings are tried in order, and a request
// that no folder has a file for goes on to the app.
func (h *staticHandler) ServeWSGI(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	scriptName, _ := req.Vars.Get("SCRIPT_NAME")
	pathInfo, _ := req.Vars.Get("PATH_INFO")
	// uWSGI matches the mount against the decoded path the app would see.
	urlPath := scriptName + pathInfo
	for _, root := range h.roots {
		rest, ok := underMount(urlPath, root.mount)
		if !ok {
			continue
		}
		f, info, err := root.open(rest)
		switch {
		case errors.Is(err, errOutside) || errors.Is(err, fs.ErrPermission):
			return answerPlain(w, http.StatusForbidden)
		case err != nil:
			continue
		}
		defer f.Close()
		method, _ := req.Vars.Get("REQUEST_METHOD")
		ims, _ := req.Vars.Get("HTTP_IF_MODIFIED_SINCE")
		var extra []string
		if expires := h.expiresFor(req, f.Name(), rest, info); expires != "" {
			extra = append(extra, "Expires", expires)
		}
		if gz, gzInfo := h.gzipSibling(f.Name(), req); gz != nil {
			defer gz.Close()
			return serveFile(w, gz, gzInfo, rest, method, ims, append(extra, "Content-Encoding", "gzip")...)
		}
		return serveFile(w, f, info, rest, method, ims, extra...)
	}
	return h.next.ServeWSGI(ctx, w, req)
}

// expiresFor is the Expires header for the file at real, served for the
// name below its folder; "" for none.
func (h *staticHandler) expiresFor(req *wsgi.Request, real, name string, info fs.FileInfo) string {
	if len(h.expires) == 0 {
		return ""
	}
	mediaType, _, _ := strings.Cut(contentType(name), ";")
	return expiresHeader(h.expires, req, real, mediaType, info.ModTime(), time.Now())
}

// gzipSibling opens real+".gz" when the client accepts gzip and the file
// is one --static-gzip-all or --static-gzip-dir covers; nil otherwise.
// As uWSGI does, it matches the accepted encodings by substring and a
// folder as a prefix of the file's real path.
func (h *staticHandler) gzipSibling(real string, req *wsgi.Request) (*os.File, fs.FileInfo) {
	accepted, _ := req.Vars.Get("HTTP_ACCEPT_ENCODING")
	if !strings.Contains(accepted, "gzip") || !h.gzipAll && !slices.ContainsFunc(h.gzipDirs, func(dir string) bool {
		return strings.HasPrefix(real, dir)
	}) {
		return nil, nil
	}
	gz, err := os.Open(real + ".gz")
	if err != nil {
		return nil, nil
	}
	info, err := gz.Stat()
	if err != nil || !info.Mode().IsRegular() {
		gz.Close()
		return nil, nil
	}
	return gz, info
}

// underMount returns the part of urlPath below mount; "/staticx" is not
// under "/static".
func underMount(urlPath, mount string) (string, bool) {
	rest, ok := strings.CutPrefix(urlPath, mount)
	if !ok || rest != "" && rest[0] != '/' {
		return "", false
	}
	return rest, true
}

var errOutside = errors.New("server: static path leaves its folder")

// serveFile answers one request with the static file f, found at name below
// its folder (the type comes from the name asked for, not a symlink's target).
// extra are header name/value pairs the 200 carries.
func serveFile(w wsgi.ResponseWriter, f *os.File, info fs.FileInfo, name, method, ifModifiedSince string, extra ...string) error {
	if method != http.MethodGet && method != http.MethodHead {
		return answerPlain(w, http.StatusMethodNotAllowed, "Allow", "GET, HEAD")
	}
	modified := info.ModTime().UTC().Truncate(time.Second)
	var headers wsgi.Vars
	headers.Add("Last-Modified", modified.Format(http.TimeFormat))
	// RFC 9110 section 13.1.3: not modified since the client's copy.
	if since, err := http.ParseTime(ifModifiedSince); err == nil && !modified.After(since) {
		return w.WriteHead("304 Not Modified", headers.Block())
	}
	headers.Add("Content-Type", contentType(name))
	headers.Add("Content-Length", strconv.FormatInt(info.Size(), 10))
	for i := 0; i+1 < len(extra); i += 2 {
		headers.Add(extra[i], extra[i+1])
	}
	if err := w.WriteHead("200 OK", headers.Block()); err != nil || method == http.MethodHead {
		return err
	}
	return w.SendFile(f, 0, info.Size())
}

// open opens the regular file at rest below the folder. A ".." segment, or
// a real path outside the folder, is errOutside; directories are not
// listed, so they are fs.ErrNotExist like a missing file.
func (root staticRoot) open(rest string) (*os.File, fs.FileInfo, error) {
	for _, segment := range strings.Split(rest, "/") {
		if segment == ".." || strings.ContainsRune(segment, 0) {
			return nil, nil, errOutside
		}
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root.dir, filepath.FromSlash(rest)))
	if err != nil {
		return nil, nil, err
	}
	if real != root.dir && !strings.HasPrefix(real, root.dir+string(filepath.Separator)) {
		return nil, nil, errOutside
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// contentType names the file's type from its extension, as uWSGI does.
func contentType(name string) string {
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// answerPlain sends a short plain-text response with code's reason phrase,
// plus optional header name/value pairs.
func answerPlain(w wsgi.ResponseWriter, code int, extra ...string) error {
	status := strconv.Itoa(code) + " " + http.StatusText(code)
	body := status + "\n"
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain; charset=utf-8")
	headers.Add("Content-Length", strconv.Itoa(len(body)))
	for i := 0; i+1 < len(extra); i += 2 {
		headers.Add(extra[i], extra[i+1])
	}
	if err := w.WriteHead(status, headers.Block()); err != nil {
		return err
	}
	return w.WriteBody([]byte(body))
}
