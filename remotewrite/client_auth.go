package remotewrite

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// defaultRecheck is how often rotated credential files (bearer token, client
// certificate) are checked for changes: often enough to pick up a rotation
// quickly, rarely enough that the hot path costs one atomic load.
const defaultRecheck = time.Second

// throttle lets one caller through per interval. It is lock-free so the hot
// path only pays an atomic load while the interval has not passed.
type throttle struct {
	interval time.Duration
	last     atomic.Int64 // unix nanoseconds of the last time due returned true
}

// due reports whether the interval has passed since the last true answer, and
// if so claims the slot, so concurrent callers do not all re-check at once.
func (t *throttle) due(now time.Time) bool {
	n := now.UnixNano()
	last := t.last.Load()
	if n-last < int64(t.interval) {
		return false
	}
	return t.last.CompareAndSwap(last, n)
}

// fileVersion identifies a file's content cheaply (mtime and size), so a
// rotated file is re-read only when it changed.
type fileVersion struct {
	mtime time.Time
	size  int64
}

// statVersion returns the current version of the file at path.
func statVersion(path string) (fileVersion, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileVersion{}, err
	}
	return fileVersion{mtime: fi.ModTime(), size: fi.Size()}, nil
}

// TokenFile is a bearer token read from a file that may be rotated while the
// proxy runs (Kubernetes service-account tokens and secrets, vault agents):
// the upstream client's writer.bearer_token_file, and the inbound auth:
// entries' bearer_token_file. The value is swapped atomically; a failed
// re-read keeps the last good token.
type TokenFile struct {
	path  string
	check throttle
	// header is "Bearer <token>", ready to put in the Authorization header.
	header atomic.Pointer[string]

	mu  sync.Mutex  // serializes re-reads; guards ver
	ver fileVersion // version of the file the current token was read from
	// err is the last re-read failure, nil once a re-read succeeds. It is
	// reported through Client.CredentialsError, never logged per request.
	err atomic.Pointer[error]
}

// NewTokenFile reads the token once; an unreadable or empty file is a
// configuration error at start-up, unlike a failed re-read later. The file
// is checked for a change at most once per recheck.
func NewTokenFile(path string, recheck time.Duration) (*TokenFile, error) {
	t := &TokenFile{path: path, check: throttle{interval: recheck}}
	t.check.last.Store(time.Now().UnixNano())
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Token returns the token, re-reading the file at most once per check
// interval if its version changed.
func (t *TokenFile) Token(now time.Time) string {
	return strings.TrimPrefix(t.authHeader(now), "Bearer ")
}

// authHeader returns the Authorization value, re-reading the file at most
// once per check interval if its version changed.
func (t *TokenFile) authHeader(now time.Time) string {
	if t.check.due(now) {
		if err := t.reload(); err != nil {
			t.err.Store(&err)
		} else {
			t.err.Store(nil)
		}
	}
	return *t.header.Load()
}

// reload re-reads the token when the file's version changed.
func (t *TokenFile) reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	ver, err := statVersion(t.path)
	if err != nil {
		return fmt.Errorf("bearer token file: %w", err)
	}
	if t.header.Load() != nil && ver == t.ver {
		return nil
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("bearer token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return fmt.Errorf("bearer token file %s is empty", t.path)
	}
	h := "Bearer " + token
	t.header.Store(&h)
	t.ver = ver
	return nil
}

// Err returns the last re-read failure, or nil once a re-read succeeded.
func (t *TokenFile) Err() error {
	if p := t.err.Load(); p != nil {
		return *p
	}
	return nil
}

// authenticator produces the Authorization header of every upstream request.
// Exactly one kind is configured; the zero value sends no header (and lets
// net/http use userinfo from the URL, if any).
type authenticator struct {
	static string     // precomputed "Basic ..." or "Bearer ..."; "" when unused
	file   *TokenFile // rotated bearer token; nil when unused
}

// newAuthenticator checks that at most one kind of credential is configured
// and prepares its header value. Errors never contain secret values.
func newAuthenticator(cfg ClientConfig, recheck time.Duration) (authenticator, error) {
	kinds := 0
	for _, set := range []bool{cfg.User != "", cfg.BearerToken != "", cfg.BearerTokenFile != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return authenticator{}, errors.New("only one of basic auth (user), bearer_token and bearer_token_file may be set")
	}
	switch {
	case cfg.Password != "" && cfg.User == "":
		return authenticator{}, errors.New("password is set but user is empty")
	case cfg.User != "":
		creds := base64.StdEncoding.EncodeToString([]byte(cfg.User + ":" + cfg.Password))
		return authenticator{static: "Basic " + creds}, nil
	case cfg.BearerToken != "":
		return authenticator{static: "Bearer " + strings.TrimSpace(cfg.BearerToken)}, nil
	case cfg.BearerTokenFile != "":
		f, err := NewTokenFile(cfg.BearerTokenFile, recheck)
		if err != nil {
			return authenticator{}, err
		}
		return authenticator{file: f}, nil
	}
	return authenticator{}, nil
}

// header returns the Authorization value to send, or "" for none.
func (a *authenticator) header(now time.Time) string {
	if a.file != nil {
		return a.file.authHeader(now)
	}
	return a.static
}

// lastErr returns the last credential re-read failure, or nil.
func (a *authenticator) lastErr() error {
	if a.file != nil {
		return a.file.Err()
	}
	return nil
}
