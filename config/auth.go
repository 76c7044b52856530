package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Credential is one entry of the auth: list: a bearer token (from the file
// or written inline) or a basic-auth user and password, and the tenants a
// producer presenting it may write to. With an auth: list every write needs
// one of its credentials, and /metrics and /-/reload need one with tenants
// ["*"] or their key (see endpointAccess); /health and /ready stay open.
type Credential struct {
	// Name identifies the credential in logs, errors and 403 answers: the
	// name key, else the username, else "auth[<index>]". Never a secret.
	Name string `yaml:"name"`
	// BearerToken is the token to present as "Authorization: Bearer <token>";
	// with bearer_token_file it is the file's content (trimmed) at start-up,
	// which validates the file; the server then re-reads the file when it
	// changes (internal/app, remotewrite.TokenFile).
	BearerToken     string `yaml:"bearer_token"`
	BearerTokenFile string `yaml:"bearer_token_file"`
	// Username and Password are HTTP basic-auth credentials (both or neither).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Tenants are the tenant patterns the credential may write to: "*",
	// "A:*", "A" (= A:0) or "A:B" (see tenantroute.ParseTenantPattern).
	Tenants []string `yaml:"tenants"`
}

// credentialKeys are the keys of one auth: entry, in documented order.
var credentialKeys = yamlKeys(Credential{})

// auth builds and checks the auth: list. Secrets never appear in its
// messages: a problem names the entry and the key only.
func (c *checker) auth(v value) []Credential {
	if !v.set() {
		return nil
	}
	if v.node.Kind != yaml.SequenceNode {
		c.errorf("auth", "must be a list of credentials, got %s; write e.g.\n"+
			"auth:\n  - bearer_token_file: /etc/scoreproxy/team5.token\n    tenants: [\"5:*\"]", describeSafe(v.node))
		return nil
	}
	var creds []Credential
	for i, n := range v.node.Content {
		if cr, ok := c.credential(fmt.Sprintf("auth[%d]", i), n); ok {
			creds = append(creds, cr)
		}
	}
	c.checkDuplicateSecrets(creds)
	return creds
}

// credential checks one auth: entry.
func (c *checker) credential(path string, n *yaml.Node) (Credential, bool) {
	if n.Kind != yaml.MappingNode {
		c.errorf(path, "must be a mapping with bearer_token, bearer_token_file or username/password, and tenants; got %s", describeSafe(n))
		return Credential{}, false
	}
	fields := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		if !containsKey(credentialKeys, key) {
			msg := fmt.Sprintf("unknown key %q (line %d); valid keys are: %s", key, n.Content[i].Line, joinKeys(credentialKeys))
			if guess := closestKey(key, credentialKeys); guess != "" {
				msg += fmt.Sprintf("; did you mean %q?", guess)
			}
			c.errorf(path, "%s", msg)
			continue
		}
		fields[key] = n.Content[i+1]
	}
	cr := Credential{
		Name:            c.str(path+".name", value{fields["name"]}, ""),
		BearerToken:     c.secret(path+".bearer_token", fields["bearer_token"]),
		BearerTokenFile: c.file(path+".bearer_token_file", value{fields["bearer_token_file"]}),
		Username:        c.str(path+".username", value{fields["username"]}, ""),
		Password:        c.secret(path+".password", fields["password"]),
		Tenants:         c.tenants(path+".tenants", fields["tenants"]),
	}
	c.checkCredentialKind(path, &cr)
	switch {
	case cr.Name != "":
	case cr.Username != "":
		cr.Name = cr.Username
	default:
		cr.Name = path
	}
	return cr, true
}

// secret reads a secret scalar without ever echoing its value.
func (c *checker) secret(path string, n *yaml.Node) string {
	if n == nil || n.Tag == "!!null" {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		c.errorf(path, "must be a single value, got %s", describeSafe(n))
		return ""
	}
	return n.Value
}

// checkCredentialKind requires exactly one kind of credential per entry and
// reads bearer_token_file.
func (c *checker) checkCredentialKind(path string, cr *Credential) {
	kinds := 0
	for _, set := range []bool{cr.BearerToken != "", cr.BearerTokenFile != "", cr.Username != "" || cr.Password != ""} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		c.errorf(path, "has no credential; set one of bearer_token, bearer_token_file, or username and password")
	case kinds > 1:
		c.errorf(path, "sets more than one of bearer_token, bearer_token_file and username/password; keep one per entry "+
			"(add another entry for another credential)")
	case (cr.Username == "") != (cr.Password == ""):
		c.errorf(path, "basic auth needs both username and password")
	case cr.BearerTokenFile != "":
		data, err := os.ReadFile(cr.BearerTokenFile)
		token := strings.TrimSpace(string(data))
		switch {
		case err != nil:
			// reported by c.file already
		case token == "":
			c.errorf(path+".bearer_token_file", "%s is empty; write the token into it", cr.BearerTokenFile)
		default:
			cr.BearerToken = token
		}
	}
}

// tenants checks a credential's tenants list.
func (c *checker) tenants(path string, n *yaml.Node) []string {
	const example = `write e.g. tenants: ["5:0"], ["5:*"] (every project of account 5) or ["*"] (any tenant)`
	if n == nil || n.Tag == "!!null" {
		c.errorf(path, "is required: the tenants this credential may write to; %s", example)
		return nil
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		c.errorf(path, "must be a non-empty list of tenant patterns, got %s; %s", describe(n), example)
		return nil
	}
	var out []string
	for i, item := range n.Content {
		if item.Kind != yaml.ScalarNode {
			c.errorf(fmt.Sprintf("%s[%d]", path, i), "must be a tenant pattern, got %s; %s", describe(item), example)
			continue
		}
		if err := checkTenantPattern(item.Value); err != nil {
			c.errorf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

// checkDuplicateSecrets rejects two entries with the same token or user:
// which tenants such a producer may write to would be ambiguous.
func (c *checker) checkDuplicateSecrets(creds []Credential) {
	tokens, users := map[string]string{}, map[string]string{}
	for _, cr := range creds {
		if cr.BearerToken != "" {
			if first, dup := tokens[cr.BearerToken]; dup {
				c.errorf("auth", "%s has the same bearer token as %s; give each credential its own token", cr.Name, first)
			}
			tokens[cr.BearerToken] = cr.Name
		}
		if cr.Username != "" {
			if first, dup := users[cr.Username]; dup {
				c.errorf("auth", "%s has the same username as %s; usernames must be unique", cr.Name, first)
			}
			users[cr.Username] = cr.Name
		}
	}
}

// describeSafe names a node's kind without its value, which may be a secret.
func describeSafe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value (" + n.ShortTag() + ")"
}

func containsKey(keys []string, k string) bool {
	for _, key := range keys {
		if key == k {
			return true
		}
	}
	return false
}

// checkTenantPattern accepts "*", "A:*", "A" and "A:B" with uint32 ids (a
// local copy of tenantroute.ParseTenantPattern's rule, so that config does
// not depend on it).
func checkTenantPattern(s string) error {
	if s == "*" {
		return nil
	}
	account, project, hasProject := strings.Cut(s, ":")
	ok := isUint32(account) && (!hasProject || project == "*" || isUint32(project))
	if !ok {
		return fmt.Errorf(`%q is not a tenant pattern: write "*" (any tenant), "<accountID>:*" (every project of an account), `+
			`"<accountID>" or "<accountID>:<projectID>", with numbers 0..4294967295 (e.g. "5:0" or "5:*")`, s)
	}
	return nil
}

func isUint32(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// AnyTenant reports whether the credential may write to every tenant
// (tenants: ["*"]), which also lets it use /metrics and /-/reload.
func (cr Credential) AnyTenant() bool {
	for _, t := range cr.Tenants {
		if t == "*" {
			return true
		}
	}
	return false
}

// operationalEndpoint is /metrics or /-/reload as the server.* keys that
// protect it see it.
type operationalEndpoint struct {
	name, keyPath, openPath string
	key                     string
	open                    bool
}

// endpointAccess checks who may use /metrics and /-/reload. With an auth:
// list they need a credential with tenants ["*"] or their key, unless
// their *_open key leaves them open on purpose; the start-up warnings say
// when one is open, and when nobody can use one.
func (c *checker) endpointAccess(cfg *Config) {
	s := cfg.Server
	for _, e := range []operationalEndpoint{
		{"GET /metrics", "server.metrics_auth_key", "server.metrics_open", s.MetricsAuthKey, s.MetricsOpen},
		{"POST /-/reload", "server.reload_auth_key", "server.reload_open", s.ReloadAuthKey, s.ReloadOpen},
	} {
		c.checkEndpoint(e, cfg.Auth)
	}
}

func (c *checker) checkEndpoint(e operationalEndpoint, creds []Credential) {
	switch {
	case e.open && e.key != "":
		c.errorf(e.openPath, "true leaves %s open to anyone, but %s asks for a key; remove one of them", e.name, e.keyPath)
	case len(creds) == 0:
	case e.open:
		c.warnf("%s: true: %s answers anyone, although auth: is set", e.openPath, e.name)
	case e.key == "" && !anyAdmin(creds):
		c.warnf("%s needs a credential with tenants [\"*\"] or %s, and auth: has no such credential and the key is not set: "+
			"nobody can use it; add such a credential, set %s, or set %s: true to leave it open", e.name, e.keyPath, e.keyPath, e.openPath)
	}
}

func anyAdmin(creds []Credential) bool {
	for _, cr := range creds {
		if cr.AnyTenant() {
			return true
		}
	}
	return false
}
