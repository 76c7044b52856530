package app

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/remotewrite"
	"github.com/scoreproxy/scoreproxy/tenantroute"
)

// Reasons of scoreproxy_auth_failures_total (forbidden_tenant is counted by
// tenantroute, which decides it after routing).
const (
	authMissing     = "missing"     // no Authorization header
	authInvalid     = "invalid"     // a token or user/password that matches no credential
	authUnsupported = "unsupported" // an Authorization scheme other than Bearer and Basic
	authSeveral     = "several"     // more than one Authorization header (400)
)

var authFailures = map[string]*metrics.Counter{}

func init() {
	for _, r := range []string{authMissing, authInvalid, authUnsupported, authSeveral} {
		authFailures[r] = metrics.GetOrCreateCounter(`scoreproxy_auth_failures_total{reason="` + r + `"}`)
	}
	metrics.GetOrCreateCounter(`scoreproxy_auth_failures_total{reason="forbidden_tenant"}`)
}

// credential is one auth: entry with its secrets hashed: comparing SHA-256
// digests with subtle.ConstantTimeCompare takes the same time whatever the
// length of the secret and of the guess, and the plain secret is not kept.
type credential struct {
	bearer     bool
	token      [sha256.Size]byte // bearer
	user, pass [sha256.Size]byte // basic
	permit     *tenantroute.Permit
	// file is bearer_token_file, re-read when it changes; digest is the
	// digest of the token last read from it (see fileToken).
	file   *remotewrite.TokenFile
	path   string // of file, for the log
	digest *atomic.Pointer[fileDigest]
}

// fileDigest is a token file's token and its SHA-256 digest.
type fileDigest struct {
	token string
	sum   [sha256.Size]byte
}

// tokenRecheck is how often a bearer_token_file is checked for a change:
// a rotated secret works within a second, and a request pays one atomic
// load in between.
var tokenRecheck = time.Second

// authenticator requires a valid credential on every request it wraps (the
// write paths) and passes the credential's tenant permit on in the request
// context, where the router enforces it (tenantroute.Permit). Secrets never
// reach logs, metrics or answers: a failure names only its reason.
type authenticator struct {
	creds     []credential
	challenge []string // WWW-Authenticate values
	next      http.Handler
	log       *slog.Logger
	limit     *remotewrite.LogLimiter
}

// newAuthenticator checks requests against the auth: credentials; nil
// when there are none.
func newAuthenticator(creds []config.Credential, logger *slog.Logger) (*authenticator, error) {
	if len(creds) == 0 {
		return nil, nil
	}
	a := &authenticator{log: logger, limit: remotewrite.NewLogLimiter(defaultLogEvery, 5)}
	hasBearer, hasBasic := false, false
	for i, c := range creds {
		patterns := make([]tenantroute.TenantPattern, 0, len(c.Tenants))
		for _, s := range c.Tenants {
			pt, err := tenantroute.ParseTenantPattern(s)
			if err != nil {
				return nil, fmt.Errorf("auth[%d].tenants: %w", i, err)
			}
			patterns = append(patterns, pt)
		}
		cr := credential{permit: tenantroute.NewPermit(c.Name, patterns)}
		if c.BearerTokenFile != "" {
			tf, err := remotewrite.NewTokenFile(c.BearerTokenFile, tokenRecheck)
			if err != nil {
				return nil, fmt.Errorf("auth[%d].bearer_token_file: %w", i, err)
			}
			cr.bearer, cr.file, cr.path, hasBearer = true, tf, c.BearerTokenFile, true
			cr.digest = new(atomic.Pointer[fileDigest])
		} else if c.BearerToken != "" {
			cr.bearer, cr.token, hasBearer = true, sha256.Sum256([]byte(c.BearerToken)), true
		} else {
			cr.user, cr.pass, hasBasic = sha256.Sum256([]byte(c.Username)), sha256.Sum256([]byte(c.Password)), true
		}
		a.creds = append(a.creds, cr)
	}
	if hasBearer {
		a.challenge = append(a.challenge, `Bearer realm="scoreproxy"`)
	}
	if hasBasic {
		a.challenge = append(a.challenge, `Basic realm="scoreproxy", charset="UTF-8"`)
	}
	return a, nil
}

// guard returns next behind the credentials: a itself, or next when a is
// nil (no auth: list).
func (a *authenticator) guard(next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	a.next = next
	return a
}

// ServeHTTP authenticates from the headers alone, before the body is read,
// so an unauthenticated request costs no body read and no decoding.
func (a *authenticator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	permit, reason := a.authenticate(r)
	if permit == nil {
		a.refuse(w, r, reason)
		return
	}
	a.next.ServeHTTP(w, r.WithContext(tenantroute.WithPermit(r.Context(), permit)))
}

// authenticate returns the permit of the credential r presents, or nil and
// why not. Every credential is compared, whichever matches, so the time
// taken does not tell how many were tried. A request with several
// Authorization headers is refused whatever they hold: which one counts
// would otherwise depend on the reader, and a proxy in front could add one.
func (a *authenticator) authenticate(r *http.Request) (*tenantroute.Permit, string) {
	values := r.Header["Authorization"]
	switch {
	case len(values) > 1:
		return nil, authSeveral
	case len(values) == 0 || values[0] == "":
		return nil, authMissing
	}
	h := values[0]
	var token, user, pass [sha256.Size]byte
	bearer := false
	if t, ok := cutPrefixFold(h, "Bearer "); ok {
		token, bearer = sha256.Sum256([]byte(strings.TrimSpace(t))), true
	} else if u, p, ok := r.BasicAuth(); ok {
		user, pass = sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
	} else {
		return nil, authUnsupported
	}
	var found *tenantroute.Permit
	now := time.Now()
	for i := range a.creds {
		c := &a.creds[i]
		var eq int
		if c.bearer {
			want := c.token
			if c.file != nil {
				want = a.fileToken(c, now)
			}
			eq = subtle.ConstantTimeCompare(token[:], want[:])
			eq &= boolInt(bearer)
		} else {
			eq = subtle.ConstantTimeCompare(user[:], c.user[:]) & subtle.ConstantTimeCompare(pass[:], c.pass[:])
			eq &= boolInt(!bearer)
		}
		if eq == 1 && found == nil {
			found = c.permit
		}
	}
	if found == nil {
		return nil, authInvalid
	}
	return found, ""
}

// fileToken returns the digest of c's token file as it is now. A file that
// cannot be read again keeps its last token working, and says so in the
// log (at most every defaultLogEvery).
// The digest is taken again only when the token changed.
func (a *authenticator) fileToken(c *credential, now time.Time) [sha256.Size]byte {
	token := c.file.Token(now)
	if err := c.file.Err(); err != nil {
		if ok, suppressed := a.limit.Allow("auth_file_" + c.path); ok {
			a.log.Warn("cannot re-read an auth: bearer_token_file; its last token stays valid", "file", c.path,
				"error", err, "suppressed_since_last", suppressed)
		}
	}
	if d := c.digest.Load(); d != nil && d.token == token {
		return d.sum
	}
	d := &fileDigest{token: token, sum: sha256.Sum256([]byte(token))}
	c.digest.Store(d)
	return d.sum
}

// refusals are the answers to requests without a valid credential; they
// say what to send, never what was sent.
var refusals = map[string]struct {
	code int
	msg  string
}{
	authMissing:     {http.StatusUnauthorized, "authentication required: send one of the credentials of the proxy's auth: section"},
	authInvalid:     {http.StatusUnauthorized, "invalid credentials: the bearer token or username/password matches no credential of the proxy's auth: section"},
	authUnsupported: {http.StatusUnauthorized, "unsupported Authorization scheme: use Bearer <token> or Basic"},
	authSeveral:     {http.StatusBadRequest, "several Authorization headers: send exactly one credential"},
}

// refuse answers a remote-write request without a valid credential.
func (a *authenticator) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	a.refuseWith(w, r, reason, "remote-write request", "")
}

// refuseWith answers 401 with the challenges (400 for several headers),
// counts and logs the refusal of what (e.g. "remote-write request"), and
// appends hint to the message.
func (a *authenticator) refuseWith(w http.ResponseWriter, r *http.Request, reason, what, hint string) {
	authFailures[reason].Inc()
	if ok, suppressed := a.limit.Allow("auth_" + reason); ok {
		a.log.Warn("refused unauthenticated "+what, "path", r.URL.Path, "remote", r.RemoteAddr,
			"reason", reason, "suppressed_since_last", suppressed)
	}
	answer := refusals[reason]
	if answer.code == http.StatusUnauthorized {
		for _, c := range a.challenge {
			w.Header().Add("WWW-Authenticate", c)
		}
	}
	http.Error(w, answer.msg+hint, answer.code)
}

// cutPrefixFold is strings.CutPrefix ignoring the case of prefix (the auth
// scheme is case-insensitive, RFC 9110 section 11.1).
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
