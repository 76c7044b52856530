package app

import (
	"crypto/subtle"
	"net/http"
)

// authKeyOK reports whether r may use an operational endpoint protected by
// key (server.reload_auth_key, server.metrics_auth_key): any request when
// key is empty, otherwise one whose authKey query argument is key, as
// vmagent's -reloadAuthKey and -metricsAuthKey work, so existing scripts
// and scrape configs carry over. It answers a refused request with 401
// naming the config key; the comparison takes the same time for every
// wrong key of a given length.
func authKeyOK(w http.ResponseWriter, r *http.Request, key, configKey string) bool {
	if key == "" {
		return true
	}
	given := r.URL.Query().Get("authKey")
	if subtle.ConstantTimeCompare([]byte(given), []byte(key)) == 1 {
		return true
	}
	msg := r.URL.Path + " needs the authKey query argument set to " + configKey
	if given != "" {
		msg = "the authKey query argument does not match " + configKey
	}
	http.Error(w, msg, http.StatusUnauthorized)
	return false
}
