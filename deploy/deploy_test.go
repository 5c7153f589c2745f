// Package deploy holds the deployment examples (nginx/) and the tests that
// keep them, docker-compose.yml and docs/scaling.md in step with the code:
// a renamed route, a larger upload limit, a new metric or a compose edit
// that breaks the two-node variant fails here rather than in production.
package deploy

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/microdeets/microchat/config"
)

// root is the repository, seen from this package's directory.
const root = ".."

// directive is one nginx directive: its name, its arguments (quotes
// removed) and, for a block (upstream, server, location), what it holds.
type directive struct {
	name  string
	args  []string
	block []directive
	line  int
}

// parseNginx reads nginx's configuration syntax: words, quoted strings,
// ";", "{", "}" and comments from "#" to the end of the line. Hand-written:
// no maintained Go library parses it, and the tests need only its shape.
func parseNginx(t *testing.T, path string) []directive {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type word struct {
		s    string
		line int
	}
	var toks []word
	line := 1
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(b) && b[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, word{string(c), line})
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(b) && b[j] != c {
				j++
			}
			if j == len(b) {
				t.Fatalf("%s:%d: unterminated string", path, line)
			}
			toks = append(toks, word{"\x00" + string(b[i+1:j]), line})
			i = j + 1
		default:
			j := i
			for j < len(b) && !strings.ContainsRune(" \t\r\n;{}#", rune(b[j])) {
				j++
			}
			toks = append(toks, word{string(b[i:j]), line})
			i = j
		}
	}
	var parse func(depth int) []directive
	pos := 0
	parse = func(depth int) []directive {
		var out []directive
		var cur *directive
		for pos < len(toks) {
			tk := toks[pos]
			pos++
			switch tk.s {
			case ";":
				if cur == nil {
					t.Fatalf("%s:%d: empty directive", path, tk.line)
				}
				out = append(out, *cur)
				cur = nil
			case "{":
				if cur == nil {
					t.Fatalf("%s:%d: block without a name", path, tk.line)
				}
				cur.block = parse(depth + 1)
				out = append(out, *cur)
				cur = nil
			case "}":
				if depth == 0 || cur != nil {
					t.Fatalf("%s:%d: unexpected }", path, tk.line)
				}
				return out
			default:
				s := strings.TrimPrefix(tk.s, "\x00")
				if cur == nil {
					cur = &directive{name: s, line: tk.line}
				} else {
					cur.args = append(cur.args, s)
				}
			}
		}
		if depth != 0 || cur != nil {
			t.Fatalf("%s: unexpected end of file", path)
		}
		return out
	}
	return parse(0)
}

// all returns the directives named name among ds and, recursively, in
// their blocks.
func all(ds []directive, name string) []directive {
	var out []directive
	for _, d := range ds {
		if d.name == name {
			out = append(out, d)
		}
		out = append(out, all(d.block, name)...)
	}
	return out
}

// one returns the single directive named name directly in ds.
func one(t *testing.T, ds []directive, name string) directive {
	t.Helper()
	var found []directive
	for _, d := range ds {
		if d.name == name {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %q directives, want 1", len(found), name)
	}
	return found[0]
}

// setHeaders returns the proxy_set_header values directly in ds.
func setHeaders(ds []directive) map[string]string {
	h := map[string]string{}
	for _, d := range ds {
		if d.name == "proxy_set_header" && len(d.args) == 2 {
			h[strings.ToLower(d.args[0])] = d.args[1]
		}
	}
	return h
}

// nginxDuration reads an nginx time ("75s", "1h", "120", "1m30s").
func nginxDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	if _, err := strconv.Atoi(s); err == nil {
		s += "s"
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("nginx time %q: %v", s, err)
	}
	return d
}

// nginxSize reads an nginx size ("10304k", "11m", "1048576").
func nginxSize(t *testing.T, s string) int64 {
	t.Helper()
	mult := int64(1)
	switch strings.ToLower(s[len(s)-1:]) {
	case "k":
		mult, s = 1<<10, s[:len(s)-1]
	case "m":
		mult, s = 1<<20, s[:len(s)-1]
	case "g":
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("nginx size %q: %v", s, err)
	}
	return n * mult
}

// goMapKeys returns the string keys of the composite literal assigned to
// the package-level variable name in file (web/routes.go's longRoutes).
func goMapKeys(t *testing.T, file, name string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != name || len(vs.Values) != 1 {
			return true
		}
		lit, ok := vs.Values[0].(*ast.CompositeLit)
		if !ok {
			t.Fatalf("%s: %s is not a literal", file, name)
		}
		for _, e := range lit.Elts {
			k, _ := e.(*ast.KeyValueExpr).Key.(*ast.BasicLit)
			if k == nil {
				t.Fatalf("%s: a key of %s is not a string literal", file, name)
			}
			s, _ := strconv.Unquote(k.Value)
			keys = append(keys, s)
		}
		return false
	})
	if len(keys) == 0 {
		t.Fatalf("%s: no map literal %s", file, name)
	}
	return keys
}

// goConstInt evaluates the integer constant name declared in file
// (web/attachments.go's uploadOverhead), whose expression uses literals
// only.
func goConstInt(t *testing.T, file, name string) int64 {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := constExprs(f)[name]
	if !ok {
		t.Fatalf("%s: no constant %s", file, name)
	}
	tv, err := types.Eval(fset, nil, token.NoPos, types.ExprString(e))
	if err != nil {
		t.Fatalf("%s: %s: %v", file, name, err)
	}
	v, ok := constant.Int64Val(tv.Value)
	if !ok {
		t.Fatalf("%s: %s is not an integer", file, name)
	}
	return v
}

// routeSample turns an echo route into a path it matches (":id" → "1").
func routeSample(route string) string {
	return regexp.MustCompile(`:[a-z]+`).ReplaceAllString(route, "1")
}

// locationFor returns the location of server that nginx picks for path:
// an exact "= path" match, else the first regular expression that matches,
// else the longest prefix.
func locationFor(t *testing.T, server []directive, path string) directive {
	t.Helper()
	var prefix *directive
	for _, d := range server {
		if d.name != "location" {
			continue
		}
		switch {
		case len(d.args) == 2 && d.args[0] == "=":
			if d.args[1] == path {
				return d
			}
		case len(d.args) == 2 && (d.args[0] == "~" || d.args[0] == "~*"):
			re := d.args[1]
			if d.args[0] == "~*" {
				re = "(?i)" + re
			}
			if regexp.MustCompile(re).MatchString(path) {
				return d
			}
		case len(d.args) == 1:
			if strings.HasPrefix(path, d.args[0]) && (prefix == nil || len(d.args[0]) > len(prefix.args[0])) {
				prefix = &d
			}
		}
	}
	if prefix == nil {
		t.Fatalf("no location for %s", path)
	}
	return *prefix
}

// composeFile is what the tests read of docker-compose.yml.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Profiles    []string          `yaml:"profiles"`
	Hostname    string            `yaml:"hostname"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Networks    any               `yaml:"networks"`
	Ulimits     struct {
		Nofile struct {
			Soft int `yaml:"soft"`
			Hard int `yaml:"hard"`
		} `yaml:"nofile"`
	} `yaml:"ulimits"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// nodes returns the services that run Microchat (built from the
// Dockerfile) and are enabled with the given profile ("" for none).
func (c composeFile) nodes(profile string) []string {
	var out []string
	for name, s := range c.Services {
		if s.Build != nil && (len(s.Profiles) == 0 || profile != "" && slices.Contains(s.Profiles, profile)) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestNginxExample checks deploy/nginx against what the nodes need: both
// WebSocket routes upgraded with timeouts longer than the nodes' own, the
// Host kept with its port (the Origin check), X-Forwarded-For, no
// stickiness, room for the largest upload, /metrics kept off the
// balancer, and open-file limits that fit the connections.
func TestNginxExample(t *testing.T) {
	conf := parseNginx(t, "nginx/microchat.conf")
	upstreams := all(conf, "upstream")
	if len(upstreams) != 1 {
		t.Fatalf("%d upstream blocks, want 1", len(upstreams))
	}
	up := upstreams[0]
	for _, sticky := range []string{"ip_hash", "hash", "sticky"} {
		if len(all(up.block, sticky)) > 0 {
			t.Errorf("upstream uses %s: the nodes need no sticky sessions", sticky)
		}
	}
	var servers []string
	for _, s := range all(up.block, "server") {
		servers = append(servers, s.args[0])
	}
	servers = slices.Sorted(slices.Values(servers))

	// The Connection header: a map from $http_upgrade whose default is
	// "upgrade" and whose empty case keeps keep-alive (Connection "").
	maps := all(conf, "map")
	if len(maps) != 1 || len(maps[0].args) != 2 || maps[0].args[0] != "$http_upgrade" {
		t.Fatalf("want one map $http_upgrade $var, got %+v", maps)
	}
	connVar := maps[0].args[1]
	cases := map[string]string{}
	for _, d := range maps[0].block {
		if len(d.args) != 1 {
			t.Fatalf("map %s: line %d has %d values, want 1", connVar, d.line, len(d.args))
		}
		cases[d.name] = d.args[0]
	}
	if v, ok := cases[""]; cases["default"] != "upgrade" || !ok || v != "" {
		t.Errorf("map %s: %q, want default upgrade and \"\" \"\" (keep-alive for the rest)", connVar, cases)
	}

	srvs := all(conf, "server")
	var server directive
	for _, s := range srvs {
		if s.block != nil {
			server = s
		}
	}
	if server.block == nil {
		t.Fatal("no server block")
	}
	if v := one(t, server.block, "proxy_http_version").args[0]; v != "1.1" {
		t.Errorf("proxy_http_version %s, want 1.1 (WebSockets, keep-alive)", v)
	}
	h := setHeaders(server.block)
	want := map[string]string{
		"host":            "$http_host", // with the port: web.sameOrigin compares it with Origin
		"x-forwarded-for": "$proxy_add_x_forwarded_for",
		"upgrade":         "$http_upgrade",
		"connection":      connVar,
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("proxy_set_header %s %q, want %q", k, h[k], v)
		}
	}

	// Every long route of web (the WebSockets and the uploads) reaches
	// the upstream; the WebSockets with a read timeout above the nodes'
	// (75 s: web's agentReadTimeout, webchat's readTimeout), so that nginx
	// never cuts a socket the node keeps.
	uploads := goMapKeys(t, filepath.Join(root, "web/routes.go"), "uploadRoutes")
	for _, route := range goMapKeys(t, filepath.Join(root, "web/routes.go"), "longRoutes") {
		loc := locationFor(t, server.block, routeSample(route))
		if p := one(t, loc.block, "proxy_pass").args[0]; p != "http://"+up.args[0] {
			t.Errorf("%s: proxy_pass %s, want http://%s", route, p, up.args[0])
		}
		if slices.Contains(uploads, route) {
			continue
		}
		rt := all(loc.block, "proxy_read_timeout")
		if len(rt) != 1 || nginxDuration(t, rt[0].args[0]) <= 75*time.Second {
			t.Errorf("WebSocket %s: location %v needs a proxy_read_timeout above 75s", route, loc.args)
		}
	}

	// The largest upload the nodes accept passes nginx: else nginx answers
	// its own HTML 413 instead of the node's JSON one.
	overhead := goConstInt(t, filepath.Join(root, "web/attachments.go"), "uploadOverhead")
	maxUpload := int64(config.Defaults().Limits.MaxUploadBytes) + overhead
	if got := nginxSize(t, one(t, server.block, "client_max_body_size").args[0]); got < maxUpload {
		t.Errorf("client_max_body_size %d, want at least %d (max_upload_bytes + uploadOverhead)", got, maxUpload)
	}

	if loc := locationFor(t, server.block, "/metrics"); len(loc.args) != 2 || loc.args[0] != "=" || len(all(loc.block, "proxy_pass")) > 0 {
		t.Errorf("/metrics goes through the balancer (location %v): it would answer for a random node", loc.args)
	}

	// The upstream names the nodes of docker-compose.yml's cluster profile.
	c := readCompose(t)
	var nodes []string
	for _, n := range c.nodes("cluster") {
		nodes = append(nodes, n+":8080")
	}
	slices.Sort(nodes)
	if !slices.Equal(servers, nodes) {
		t.Errorf("upstream servers %v, want the cluster profile's nodes %v", servers, nodes)
	}

	// Each proxied socket holds two descriptors in nginx.
	main := parseNginx(t, "nginx/nginx.conf")
	rlimit, _ := strconv.Atoi(one(t, main, "worker_rlimit_nofile").args[0])
	events := one(t, main, "events")
	wc, _ := strconv.Atoi(one(t, events.block, "worker_connections").args[0])
	if wc < 2048 || rlimit < wc {
		t.Errorf("worker_connections %d, worker_rlimit_nofile %d: want at least 2048 and the limit above the connections", wc, rlimit)
	}
	if !slices.ContainsFunc(all(one(t, main, "http").block, "include"), func(d directive) bool { return slices.Contains(d.args, "microchat.conf") }) {
		t.Error("nginx.conf's http block does not include microchat.conf")
	}
	if n := c.Services["nginx"].Ulimits.Nofile.Hard; n < rlimit {
		t.Errorf("compose nginx: nofile hard limit %d under worker_rlimit_nofile %d (a container may not raise it)", n, rlimit)
	}
}

// TestComposeCluster checks docker-compose.yml: without a profile one node
// on PostgreSQL as before; with the cluster profile two nodes on the same
// database behind nginx, which runs the deploy/nginx files, and whose
// address the nodes trust.
func TestComposeCluster(t *testing.T) {
	c := readCompose(t)
	single := c.nodes("")
	if len(single) != 1 {
		t.Fatalf("nodes without a profile: %v, want one", single)
	}
	if s := c.Services[single[0]]; !slices.Contains(s.Ports, "8080:8080") {
		t.Errorf("%s publishes %v, want 8080:8080", single[0], s.Ports)
	}
	if p := c.Services["postgres"]; p.Image == "" || len(p.Profiles) != 0 {
		t.Errorf("postgres: image %q, profiles %v: want an image and no profile", p.Image, p.Profiles)
	}

	nodes := c.nodes("cluster")
	if len(nodes) < 2 {
		t.Fatalf("cluster nodes %v, want at least 2", nodes)
	}
	nginx, ok := c.Services["nginx"]
	if !ok || !slices.Contains(nginx.Profiles, "cluster") || len(nginx.Ports) == 0 {
		t.Fatalf("nginx: %+v, want a service in the cluster profile with a published port", nginx)
	}
	for _, f := range []string{"deploy/nginx/nginx.conf", "deploy/nginx/microchat.conf"} {
		if !slices.ContainsFunc(nginx.Volumes, func(v string) bool { return strings.HasPrefix(v, "./"+f+":") }) {
			t.Errorf("nginx does not mount %s: %v", f, nginx.Volumes)
		}
	}
	// nginx's fixed address, which the nodes name in trusted_proxies.
	var nginxIP string
	if nets, ok := nginx.Networks.(map[string]any); ok {
		for _, n := range nets {
			if m, ok := n.(map[string]any); ok {
				nginxIP, _ = m["ipv4_address"].(string)
			}
		}
	}
	if nginxIP == "" {
		t.Fatal("nginx has no fixed ipv4_address for the nodes to trust")
	}

	var url, admins string // admins: the default node, if it creates the admin
	hosts := map[string]string{}
	for _, n := range nodes {
		s := c.Services[n]
		env := s.Environment
		if !strings.HasPrefix(env["MICROCHAT_DATABASE_URL"], "postgres://") {
			t.Errorf("%s: MICROCHAT_DATABASE_URL %q, want PostgreSQL", n, env["MICROCHAT_DATABASE_URL"])
		}
		if url == "" {
			url = env["MICROCHAT_DATABASE_URL"]
		} else if env["MICROCHAT_DATABASE_URL"] != url {
			t.Errorf("%s: another database (%s, want %s)", n, env["MICROCHAT_DATABASE_URL"], url)
		}
		if !slices.Contains(strings.Split(env["MICROCHAT_TRUSTED_PROXIES"], ","), nginxIP) {
			t.Errorf("%s: MICROCHAT_TRUSTED_PROXIES %q lacks nginx (%s)", n, env["MICROCHAT_TRUSTED_PROXIES"], nginxIP)
		}
		if _, ok := env["MICROCHAT_BASE_URL"]; !ok {
			t.Errorf("%s: no MICROCHAT_BASE_URL", n)
		}
		if id := env["MICROCHAT_NODE_ID"]; id != "" {
			t.Errorf("%s: MICROCHAT_NODE_ID %q: leave it to the host name, unique per container", n, id)
		}
		if prev, dup := hosts[s.Hostname]; dup && s.Hostname != "" {
			t.Errorf("%s and %s share the hostname %q", n, prev, s.Hostname)
		}
		hosts[s.Hostname] = n
		if _, ok := env["MICROCHAT_ADMIN_EMAIL"]; ok && n == single[0] {
			admins = n
		}
		if s.Ulimits.Nofile.Hard < 4096 {
			t.Errorf("%s: nofile hard limit %d: visitor_sockets derives the node's cap from it", n, s.Ulimits.Nofile.Hard)
		}
	}
	if admins == "" {
		t.Errorf("the default node %s does not create the admin from MICROCHAT_ADMIN_EMAIL", single[0])
	}

	// The profile named in the instructions exists.
	for _, f := range []string{"README.md", "docs/scaling.md", "docker-compose.yml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		ms := regexp.MustCompile(`--profile (\S+)`).FindAllStringSubmatch(string(b), -1)
		if len(ms) == 0 {
			t.Errorf("%s does not say how to start the cluster profile", f)
		}
		for _, m := range ms {
			if m[1] != "cluster" {
				t.Errorf("%s: --profile %s, the profile is cluster", f, m[1])
			}
		}
	}
}

// TestComposeClusterCommands checks the command that starts the cluster
// profile wherever the instructions give it (README.md, docs/scaling.md,
// docker-compose.yml's own header): it sets every variable that
// docker-compose.yml takes from the environment (${VAR} or ${VAR:-...}),
// and MICROCHAT_BASE_URL names the port nginx publishes. A command that
// left one out would start nodes that print links to the wrong place or
// create no admin.
func TestComposeClusterCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var uncommented []string
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			uncommented = append(uncommented, line)
		}
	}
	var need []string
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::?[-?+][^}]*)?\}`).FindAllStringSubmatch(strings.Join(uncommented, ""), -1) {
		if !slices.Contains(need, m[1]) {
			need = append(need, m[1])
		}
	}
	if !slices.Contains(need, "MICROCHAT_BASE_URL") {
		t.Fatalf("docker-compose.yml takes %v from the environment, want MICROCHAT_BASE_URL among them", need)
	}
	nginx := readCompose(t).Services["nginx"]
	if len(nginx.Ports) == 0 {
		t.Fatal("nginx publishes no port")
	}
	nginxPort, _, _ := strings.Cut(nginx.Ports[0], ":")

	assign := regexp.MustCompile(`(?:^|\s)([A-Z][A-Z0-9_]*)=('[^']*'|"[^"]*"|\S*)`)
	for _, f := range []string{"README.md", "docs/scaling.md", "docker-compose.yml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		// Commands, with their continued lines joined and a comment's
		// "#" removed.
		var cmds []string
		cur := ""
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
			if rest, ok := strings.CutSuffix(line, "\\"); ok {
				cur += rest + " "
				continue
			}
			cur += line
			if strings.Contains(cur, "docker compose --profile cluster up") {
				cmds = append(cmds, cur)
			}
			cur = ""
		}
		if len(cmds) == 0 {
			t.Errorf("%s has no \"docker compose --profile cluster up\" command", f)
		}
		for _, cmd := range cmds {
			env, _, _ := strings.Cut(cmd, "docker compose")
			set := map[string]string{}
			for _, m := range assign.FindAllStringSubmatch(env, -1) {
				set[m[1]] = strings.Trim(m[2], `'"`)
			}
			for _, v := range need {
				if _, ok := set[v]; !ok {
					t.Errorf("%s: %q does not set %s, which docker-compose.yml takes from the environment", f, cmd, v)
				}
			}
			if u := set["MICROCHAT_BASE_URL"]; u != "" && !strings.HasSuffix(u, ":"+nginxPort) {
				t.Errorf("%s: MICROCHAT_BASE_URL=%s, want nginx's published port %s", f, u, nginxPort)
			}
		}
	}
}

// registeredMetrics returns the Prometheus metric names the code declares:
// the Name (with Namespace and Subsystem) of every prometheus.*Opts
// literal and the first argument of every prometheus.NewDesc, in the
// non-test Go files of the repository, by file:line.
func registeredMetrics(t *testing.T) map[string]string {
	t.Helper()
	names := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		consts := fileStringConsts(f)
		str := func(e ast.Expr) (string, bool) {
			switch e := e.(type) {
			case *ast.BasicLit:
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			case *ast.Ident:
				s, ok := consts[e.Name]
				return s, ok
			}
			return "", false
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || !isPkg(sel.X, "prometheus") || !strings.HasSuffix(sel.Sel.Name, "Opts") {
					return true
				}
				var parts [3]string // namespace, subsystem, name
				for _, e := range n.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					i := slices.Index([]string{"Namespace", "Subsystem", "Name"}, kv.Key.(*ast.Ident).Name)
					if i < 0 {
						continue
					}
					s, ok := str(kv.Value)
					if !ok {
						t.Errorf("%s: a metric's %s is not a string constant this test can read", fset.Position(kv.Pos()), kv.Key)
					}
					parts[i] = s
				}
				if parts[2] != "" {
					names[strings.Join(slices.DeleteFunc(parts[:], func(s string) bool { return s == "" }), "_")] = fset.Position(n.Pos()).String()
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || !isPkg(sel.X, "prometheus") || sel.Sel.Name != "NewDesc" || len(n.Args) == 0 {
					return true
				}
				s, ok := str(n.Args[0])
				if !ok {
					t.Errorf("%s: a metric's name is not a string constant this test can read", fset.Position(n.Pos()))
				}
				names[s] = fset.Position(n.Pos()).String()
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// constExprs returns the expression of every constant declared in f with
// a value of its own, by name.
func constExprs(f *ast.File) map[string]ast.Expr {
	m := map[string]ast.Expr{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					m[n.Name] = vs.Values[i]
				}
			}
		}
	}
	return m
}

// fileStringConsts returns the string constants declared in f with a
// literal value.
func fileStringConsts(f *ast.File) map[string]string {
	m := map[string]string{}
	for name, e := range constExprs(f) {
		if l, ok := e.(*ast.BasicLit); ok && l.Kind == token.STRING {
			m[name], _ = strconv.Unquote(l.Value)
		}
	}
	return m
}

func isPkg(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// TestScalingDocMetrics checks that docs/scaling.md lists every metric a
// node registers, and names none that no code registers.
func TestScalingDocMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs/scaling.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]bool{}
	for _, m := range regexp.MustCompile("`(microchat_[a-z_]+)[{`]").FindAllStringSubmatch(string(b), -1) {
		doc[m[1]] = true
	}
	code := registeredMetrics(t)
	if len(code) < 10 {
		t.Fatalf("found only %d metrics in the code: %v", len(code), code)
	}
	for name, at := range code {
		if !strings.HasPrefix(name, "microchat_") {
			t.Errorf("%s: metric %s lacks the microchat_ prefix", at, name)
		}
		if !doc[name] {
			t.Errorf("%s: metric %s is not in docs/scaling.md's list", at, name)
		}
	}
	for name := range doc {
		if _, ok := code[name]; !ok {
			t.Errorf("docs/scaling.md names %s, which no code registers", name)
		}
	}
}
