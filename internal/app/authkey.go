package app

import (
	"crypto/subtle"
	"net/http"
	"strconv"

	"github.com/scoreproxy/scoreproxy/config"
)

// endpointAccess says who may use an operational endpoint (GET /metrics,
// POST /-/reload):
//   - with open (server.metrics_open, server.reload_open): anyone;
//   - a request whose authKey query argument is key (server.metrics_auth_key,
//     server.reload_auth_key), as vmagent's -metricsAuthKey and
//     -reloadAuthKey work, so existing scripts and scrape configs carry over;
//   - with an auth: list (auth != nil): a request presenting a credential
//     with tenants ["*"], the only kind that may see or change what every
//     tenant gets;
//   - without an auth: list and without a key: anyone.
type endpointAccess struct {
	key     string
	keyPath string // the config key of key, for the answers
	open    bool
	auth    *authenticator
}

// metricsAccess and reloadAccess are the rules of cfg for /metrics and
// /-/reload; auth is the pipeline's authenticator (nil without auth:).
func metricsAccess(cfg *config.Config, auth *authenticator) endpointAccess {
	return endpointAccess{key: cfg.Server.MetricsAuthKey, keyPath: "server.metrics_auth_key", open: cfg.Server.MetricsOpen, auth: auth}
}

func reloadAccess(cfg *config.Config, auth *authenticator) endpointAccess {
	return endpointAccess{key: cfg.Server.ReloadAuthKey, keyPath: "server.reload_auth_key", open: cfg.Server.ReloadOpen, auth: auth}
}

// allow reports whether r may use the endpoint, and otherwise answers it:
// 401 without a valid credential or key (400 for several Authorization
// headers), 403 for a credential bound to some tenants only. The key
// comparison takes the same time for every wrong key of a given length.
func (e endpointAccess) allow(w http.ResponseWriter, r *http.Request) bool {
	given := ""
	if e.key != "" {
		given = r.URL.Query().Get("authKey")
	}
	switch {
	case e.open, e.key == "" && e.auth == nil:
		return true
	case e.key != "" && subtle.ConstantTimeCompare([]byte(given), []byte(e.key)) == 1:
		return true
	case given != "":
		http.Error(w, "the authKey query argument does not match "+e.keyPath, http.StatusUnauthorized)
		return false
	case e.auth == nil:
		http.Error(w, r.URL.Path+" needs the authKey query argument set to "+e.keyPath, http.StatusUnauthorized)
		return false
	}
	return e.allowCredential(w, r)
}

// allowCredential applies the auth: rule: a credential with tenants ["*"].
func (e endpointAccess) allowCredential(w http.ResponseWriter, r *http.Request) bool {
	hint := "; " + r.URL.Path + ` needs one with tenants ["*"]`
	if e.key != "" {
		hint += ", or the authKey query argument set to " + e.keyPath
	}
	permit, reason := e.auth.authenticate(r)
	switch {
	case permit == nil:
		e.auth.refuseWith(w, r, reason, "request to "+r.URL.Path, hint)
		return false
	case !permit.All():
		http.Error(w, "credential "+strconv.Quote(permit.Name)+" may write to tenants ["+permit.String()+"] only"+hint, http.StatusForbidden)
		return false
	}
	return true
}
