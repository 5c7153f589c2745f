package config

import (
	"bytes"
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts the name of every environment variable that overrides a
// config key.
const EnvPrefix = "MICROCHAT_"

// Load reads the YAML file at path ("" for none), applies the MICROCHAT_
// environment variables of the process on top, fills in defaults and
// validates the result. See [LoadEnv].
func Load(path string) (Config, error) {
	return LoadEnv(path, os.Environ())
}

// LoadEnv is [Load] with the environment given as "NAME=value" strings, as
// os.Environ returns them. Variables that start with MICROCHAT_ but name no
// config key are ignored. A missing file is an error that matches
// fs.ErrNotExist; an empty file is fine. Every other error is one line per
// problem, each naming the file and line, or the variable, at fault.
func LoadEnv(path string, environ []string) (Config, error) {
	l := &loader{file: path, where: map[string]source{}}
	c := Defaults()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := l.decodeFile(data, &c); err != nil {
			return Config{}, err
		}
	}
	if err := l.applyEnv(environ, &c); err != nil {
		return Config{}, err
	}
	if errs := l.validate(&c); len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// source is where a value came from: a line of the file, or an
// environment variable.
type source struct {
	line int    // in loader.file, when env is empty
	env  string // name of the variable
}

// loader carries what one LoadEnv call learns about where each key was
// set, so that errors found after defaults are applied can still point at
// the line or variable responsible.
type loader struct {
	file string
	// where maps a key path ("limits.max_upload_bytes",
	// "mailboxes[0].imap.port") to where it was last set.
	where map[string]source
	// nodes counts the YAML nodes decoded, which aliases and merge keys
	// can make exponential in the size of the file.
	nodes int
}

// keyError is one configuration problem.
type keyError struct {
	file string // empty when the problem is not in a file
	src  source
	key  string // key path, or "" when msg names it
	msg  string
}

func (e *keyError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	switch {
	case e.src.env != "":
		// The variable's name says which key it is.
		return "config: " + e.src.env + ": " + e.msg
	case e.file != "" && e.src.line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.file, e.src.line)
	case e.file != "":
		fmt.Fprintf(&b, "%s: ", e.file)
	}
	if e.key != "" {
		b.WriteString(e.key + ": ")
	}
	b.WriteString(e.msg)
	return b.String()
}

// errAt returns an error about key at a line of the file.
func (l *loader) errAt(line int, key, msg string) error {
	return &keyError{file: l.file, src: source{line: line}, key: key, msg: msg}
}

// locate returns an error about key at the place that set it, or that set
// the nearest enclosing key (a missing key is reported at its parent).
func (l *loader) locate(key, msg string) error {
	for k := key; k != ""; k = parentKey(k) {
		if src, ok := l.where[k]; ok {
			if src.env != "" && src.env != EnvName(key) {
				// Say which key: the variable set an enclosing one.
				return &keyError{src: src, msg: key + ": " + msg}
			}
			return &keyError{file: l.file, src: src, key: key, msg: msg}
		}
	}
	return &keyError{key: key, msg: msg}
}

// parentKey returns the key path that encloses key: "a.b[2].c" -> "a.b[2]"
// -> "a.b" -> "a" -> "".
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// yamlLine finds the line in a yaml.v3 error message.
var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeFile decodes the YAML in data onto c, recording the line of every
// key.
func (l *loader) decodeFile(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return nil // empty, or comments only
	} else if err != nil {
		return l.syntaxError(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return l.errAt(next.Line, "", `a config file holds one YAML document; remove the second "---"`)
	} else if err != io.EOF {
		return l.syntaxError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return l.errAt(root.Line, "", fmt.Sprintf("expected keys and values such as listen: \":8080\", not %s", kindName(root)))
	}
	return l.decode(root, reflect.ValueOf(c).Elem(), "", 0)
}

// syntaxError turns a yaml.v3 parse error into one line with file and line.
func (l *loader) syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "\n", " ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return l.errAt(line, "", m[2])
	}
	return l.errAt(0, "", msg)
}

// maxDepth bounds recursion through aliases and merge keys, which can form
// cycles in YAML; maxNodes bounds the work they can cause ("billion
// laughs"), far above what any real configuration needs.
const (
	maxDepth = 32
	maxNodes = 100_000
)

// decode stores the YAML node n in v, the value of the key path key.
// A null leaves v as it was: a key with no value keeps its default.
func (l *loader) decode(n *yaml.Node, v reflect.Value, key string, depth int) error {
	if depth > maxDepth {
		return l.errAt(n.Line, key, "nested too deeply (a recursive alias?)")
	}
	if l.nodes++; l.nodes > maxNodes {
		return l.errAt(n.Line, key, "too many values (aliases expanding too much?)")
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return l.errAt(n.Line, key, "unknown alias")
		}
		n = n.Alias
	}
	if isNull(n) {
		return nil
	}
	_, isText := v.Addr().Interface().(encoding.TextUnmarshaler)
	switch {
	case !isText && v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return l.errAt(n.Line, key, "expected keys and values, not "+kindName(n))
		}
		return l.decodeMapping(n, v, key, depth)
	case !isText && v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return l.errAt(n.Line, key, "expected a list, not "+kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			ek := fmt.Sprintf("%s[%d]", key, i)
			l.where[ek] = source{line: e.Line}
			if err := l.decode(e, s.Index(i), ek, depth+1); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return l.errAt(n.Line, key, "expected a single value, not "+kindName(n))
	}
	if err := setScalar(v, n.Value); err != nil {
		return l.errAt(n.Line, key, err.Error())
	}
	return nil
}

// decodeMapping stores the keys of the mapping n in the fields of the
// struct v with the same yaml tags.
func (l *loader) decodeMapping(n *yaml.Node, v reflect.Value, key string, depth int) error {
	fields := yamlFields(v.Type())
	// Merge keys (<<: *defaults) first, so that the mapping's own keys
	// override what they bring.
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !isMerge(k) {
			continue
		}
		if val.Kind == yaml.AliasNode && val.Alias != nil {
			val = val.Alias
		}
		merged := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			merged = val.Content
		}
		for _, m := range merged {
			if m.Kind == yaml.AliasNode && m.Alias != nil {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				return l.errAt(k.Line, key, "<< must be followed by an alias of a mapping, or a list of them")
			}
			if err := l.decode(m, v, key, depth+1); err != nil {
				return err
			}
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return l.errAt(k.Line, key, "expected a key name, not "+kindName(k))
		}
		full := joinKey(key, k.Value)
		if first, dup := seen[k.Value]; dup {
			return l.errAt(k.Line, "", fmt.Sprintf("key %q appears twice (first on line %d)", full, first))
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			return l.errAt(k.Line, "", unknownKey(key, k.Value, fields))
		}
		l.where[full] = source{line: k.Line}
		if err := l.decode(val, v.Field(f), full, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!merge"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "keys and values"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "this"
}

// yamlFields maps the yaml names of a struct's fields to their index.
func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// unknownKey says that name is no key under prefix, suggesting the
// nearest known key.
func unknownKey(prefix, name string, fields map[string]int) string {
	msg := fmt.Sprintf("unknown key %q", joinKey(prefix, name))
	best, bestDist := "", 3
	for known := range fields {
		d := editDistance(strings.ToLower(name), known)
		if d < bestDist || d == bestDist && known < best {
			best, bestDist = known, d
		}
	}
	if best != "" && bestDist < len(name) {
		return msg + fmt.Sprintf(" (did you mean %q?)", joinKey(prefix, best))
	}
	// A key at the wrong level, e.g. "url" at the top: name the keys that
	// end like it.
	var elsewhere []string
	for _, k := range allKeys() {
		if k == name || strings.HasSuffix(k, "."+name) {
			elsewhere = append(elsewhere, strconv.Quote(k))
		}
	}
	if len(elsewhere) > 0 {
		return msg + " (did you mean " + strings.Join(elsewhere, " or ") + "?)"
	}
	return msg
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// setScalar parses s into v, a leaf of the config: a string, an integer or
// a type with UnmarshalText (Duration, Size, TLSMode).
func setScalar(v reflect.Value, s string) error {
	if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return tu.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	default:
		panic("config: no parser for " + v.Type().String())
	}
	return nil
}

// envTable maps environment variable names (without MICROCHAT_) to the
// keys of one struct type. It is derived from the yaml tags, so every key
// has a variable without a list to keep up to date.
type envTable struct {
	leaves map[string]envLeaf
	lists  map[string]envList // by name prefix: "MAILBOXES"
}

// envLeaf is a key set by a single variable; a list of strings is
// comma-separated.
type envLeaf struct {
	key   string // relative key path, "imap.password"
	index []int  // field index path for reflect.Value.FieldByIndex
}

// envList is a list of structs, whose entries' keys are set by index:
// MAILBOXES_0_NAME.
type envList struct {
	key   string
	index []int
	elem  *envTable
}

// configEnv is the table of Config, built once.
var configEnv = newEnvTable(reflect.TypeFor[Config]())

func newEnvTable(t reflect.Type) *envTable {
	et := &envTable{leaves: map[string]envLeaf{}, lists: map[string]envList{}}
	et.add(t, "", "", nil)
	return et
}

func (et *envTable) add(t reflect.Type, keyPrefix, envPrefix string, index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := joinKey(keyPrefix, name)
		env := strings.ToUpper(name)
		if envPrefix != "" {
			env = envPrefix + "_" + env
		}
		idx := append(slices.Clone(index), i)
		_, isText := reflect.PointerTo(f.Type).MethodByName("UnmarshalText")
		switch {
		case !isText && f.Type.Kind() == reflect.Struct:
			et.add(f.Type, key, env, idx)
			continue
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			et.lists[env] = envList{key: key, index: idx, elem: newEnvTable(f.Type.Elem())}
		default:
			if _, dup := et.leaves[env]; dup {
				panic("config: two keys have the environment variable " + EnvPrefix + env)
			}
			et.leaves[env] = envLeaf{key: key, index: idx}
		}
	}
}

// allKeys returns the key paths of Config, entries of lists as "[0]".
func allKeys() []string {
	var keys []string
	var walk func(et *envTable, prefix string)
	walk = func(et *envTable, prefix string) {
		for _, l := range et.leaves {
			keys = append(keys, joinKey(prefix, l.key))
		}
		for _, l := range et.lists {
			keys = append(keys, joinKey(prefix, l.key))
			walk(l.elem, joinKey(prefix, l.key)+"[0]")
		}
	}
	walk(configEnv, "")
	slices.Sort(keys)
	return keys
}

// EnvName returns the environment variable that overrides the key path
// key: "database.url" is MICROCHAT_DATABASE_URL, "mailboxes[0].imap.password"
// is MICROCHAT_MAILBOXES_0_IMAP_PASSWORD.
func EnvName(key string) string {
	r := strings.NewReplacer(".", "_", "[", "_", "]", "")
	return EnvPrefix + strings.ToUpper(r.Replace(key))
}

// applyEnv sets the keys named by MICROCHAT_ variables in environ.
func (l *loader) applyEnv(environ []string, c *Config) error {
	type variable struct{ name, value string }
	var vars []variable
	seen := map[string]bool{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || seen[name] {
			continue // like os.Getenv, the first of duplicates wins
		}
		seen[name] = true
		vars = append(vars, variable{name, value})
	}
	// List entries must be created in order: MAILBOXES_2_* after
	// MAILBOXES_10_* would not do.
	slices.SortFunc(vars, func(a, b variable) int { return naturalCompare(a.name, b.name) })
	for _, v := range vars {
		if err := l.setEnv(configEnv, reflect.ValueOf(c).Elem(), "", strings.TrimPrefix(v.name, EnvPrefix), v.value, v.name); err != nil {
			return err
		}
	}
	return nil
}

// setEnv sets the key that name (the rest of the variable's name, below
// keyPrefix) stands for in the struct v. Names of no key are ignored.
func (l *loader) setEnv(et *envTable, v reflect.Value, keyPrefix, name, value, variable string) error {
	if leaf, ok := et.leaves[name]; ok {
		f := v.FieldByIndex(leaf.index)
		var err error
		if f.Kind() == reflect.Slice {
			err = setList(f, value)
		} else {
			err = setScalar(f, value)
		}
		if err != nil {
			return &keyError{src: source{env: variable}, msg: err.Error()}
		}
		l.setByEnv(joinKey(keyPrefix, leaf.key), variable)
		return nil
	}
	for prefix, list := range et.lists {
		if name == prefix {
			return &keyError{src: source{env: variable}, msg: fmt.Sprintf("set each field of an entry by its index instead, e.g. %s_0_%s", variable, firstLeaf(list.elem))}
		}
		rest, ok := strings.CutPrefix(name, prefix+"_")
		if !ok {
			continue
		}
		digits, field, ok := strings.Cut(rest, "_")
		if !ok || !allDigits(digits) || !list.elem.has(field) {
			continue
		}
		s := v.FieldByIndex(list.index)
		key := joinKey(keyPrefix, list.key)
		i, err := strconv.Atoi(digits)
		if err != nil || i > s.Len() {
			return &keyError{src: source{env: variable}, msg: fmt.Sprintf("there is no entry %s in %s (%d configured); entries are numbered from 0, and the variables may add only the next one, %d", digits, key, s.Len(), s.Len())}
		}
		elemKey := fmt.Sprintf("%s[%d]", key, i)
		if i == s.Len() {
			s.Set(reflect.Append(s, reflect.Zero(s.Type().Elem())))
			l.setByEnv(elemKey, variable)
		}
		return l.setEnv(list.elem, s.Index(i), elemKey, field, value, variable)
	}
	return nil
}

// setByEnv records that key was set by an environment variable, forgetting
// the file lines of what it replaced.
func (l *loader) setByEnv(key, variable string) {
	for k := range l.where {
		if strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[") {
			delete(l.where, k)
		}
	}
	l.where[key] = source{env: variable}
}

// has reports whether name is a variable of the table.
func (et *envTable) has(name string) bool {
	if _, ok := et.leaves[name]; ok {
		return true
	}
	for prefix, list := range et.lists {
		if rest, ok := strings.CutPrefix(name, prefix+"_"); ok {
			if digits, field, ok := strings.Cut(rest, "_"); ok && allDigits(digits) && list.elem.has(field) {
				return true
			}
		}
	}
	return false
}

func firstLeaf(et *envTable) string {
	if _, ok := et.leaves["NAME"]; ok {
		return "NAME"
	}
	return slices.Sorted(maps.Keys(et.leaves))[0]
}

// setList sets a list of strings from a comma-separated value; empty items
// are dropped, so "" is an empty list.
func setList(v reflect.Value, value string) error {
	var items []string
	for item := range strings.SplitSeq(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	s := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		if err := setScalar(s.Index(i), item); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// naturalCompare orders strings with runs of digits compared as numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			i, j := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// validate checks c after the file and the environment are applied, fills
// in the defaults that depend on other keys, and returns one error per
// problem.
func (l *loader) validate(c *Config) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, l.locate(key, fmt.Sprintf(format, args...)))
	}

	if c.PprofListen != "" {
		if _, port, err := net.SplitHostPort(c.PprofListen); err != nil || !validPort(port, true) {
			bad("pprof_listen", "%q is not host:port (use e.g. \"127.0.0.1:6060\")", c.PprofListen)
		}
	}
	if c.Listen == "" {
		bad("listen", "required (e.g. \":8080\")")
	} else if _, port, err := net.SplitHostPort(c.Listen); err != nil || !validPort(port, true) {
		bad("listen", "%q is not host:port (use e.g. \":8080\" or \"127.0.0.1:8080\")", c.Listen)
	}
	if c.DataDir == "" && c.Database.URL == "" {
		bad("data_dir", "required when database.url is empty (e.g. ./data)")
	}
	if c.BaseURL != "" {
		c.BaseURL = strings.TrimRight(c.BaseURL, "/")
		u, err := url.Parse(c.BaseURL)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			bad("base_url", "%q is not an absolute http(s) URL (use e.g. https://chat.example.com)", c.BaseURL)
		}
	}
	if msg := checkDatabaseURL(c.Database.URL); msg != "" {
		bad("database.url", "%s", msg)
	}
	if c.Database.MaxOpenConns < 1 {
		bad("database.max_open_conns", "must be at least 1")
	}
	c.Log.Level = strings.ToLower(c.Log.Level)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not a log level (use debug, info, warn or error)", c.Log.Level)
	}
	c.Log.Format = strings.ToLower(c.Log.Format)
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q is not a log format (use text or json)", c.Log.Format)
	}
	if c.Session.TTL <= 0 {
		bad("session.ttl", "must be more than 0 (e.g. 720h)")
	}
	if !validCookieName(c.Session.CookieName) {
		bad("session.cookie_name", "%q is not a cookie name (use letters, digits, - and _)", c.Session.CookieName)
	}
	if c.Agents.IdleAfter.D() < time.Second {
		bad("agents.idle_after", "must be at least 1s (e.g. 5m)")
	}
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = nil
	}
	for i, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR prefix (use e.g. 10.0.0.0/8 or 127.0.0.1)", p)
		}
	}
	for key, s := range map[string]Size{
		"limits.max_body_bytes":    c.Limits.MaxBodyBytes,
		"limits.max_message_bytes": c.Limits.MaxMessageBytes,
		"limits.max_upload_bytes":  c.Limits.MaxUploadBytes,
	} {
		if s <= 0 {
			bad(key, "must be more than 0")
		}
	}
	if c.Limits.MaxMessageBytes > c.Limits.MaxBodyBytes && c.Limits.MaxBodyBytes > 0 {
		bad("limits.max_message_bytes", "%s is more than limits.max_body_bytes (%s), the request body a message arrives in", c.Limits.MaxMessageBytes, c.Limits.MaxBodyBytes)
	}
	if c.Limits.LoginAttemptsPerMinute < 1 {
		bad("limits.login_attempts_per_minute", "must be at least 1")
	}
	for key, n := range map[string]int{
		"limits.sockets_per_session":       c.Limits.SocketsPerSession,
		"limits.sockets_per_agent":         c.Limits.SocketsPerAgent,
		"limits.sockets_per_ip":            c.Limits.SocketsPerIP,
		"limits.agent_messages_per_second": c.Limits.AgentMessagesPerSecond,
	} {
		if n < 0 {
			bad(key, "must not be negative (0 turns the limit off)")
		}
	}
	if c.Limits.AgentMessageBurst < 1 {
		bad("limits.agent_message_burst", "must be at least 1")
	}
	if c.Limits.VisitorSockets < 0 {
		bad("limits.visitor_sockets", "must not be negative (0 derives it from the open-file limit)")
	}
	for key, d := range map[string]Duration{
		"offline_after":      c.OfflineAfter,
		"email_after_unread": c.EmailAfterUnread,
		"events.retention":   c.Events.Retention,
		"shutdown_timeout":   c.ShutdownTimeout,
	} {
		if d < 0 {
			bad(key, "must not be negative")
		}
	}
	for key, n := range map[string]int{
		"widget.rate_limits.starts_per_minute_per_ip":   c.Widget.RateLimits.StartsPerMinutePerIP,
		"widget.rate_limits.messages_per_minute":        c.Widget.RateLimits.MessagesPerMinute,
		"widget.rate_limits.messages_per_minute_per_ip": c.Widget.RateLimits.MessagesPerMinutePerIP,
		"widget.rate_limits.uploads_per_minute":         c.Widget.RateLimits.UploadsPerMinute,
		"widget.rate_limits.uploads_per_minute_per_ip":  c.Widget.RateLimits.UploadsPerMinutePerIP,
	} {
		if n < 0 {
			bad(key, "must not be negative (0 turns the limit off)")
		}
	}
	if c.Widget.SessionTTL <= 0 {
		bad("widget.session_ttl", "must be more than 0 (e.g. 720h)")
	}
	if len(c.Widget.AllowedOrigins) == 0 {
		c.Widget.AllowedOrigins = nil
	}
	for i, o := range c.Widget.AllowedOrigins {
		o = strings.TrimRight(o, "/")
		c.Widget.AllowedOrigins[i] = o
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Path != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			bad(fmt.Sprintf("widget.allowed_origins[%d]", i), "%q is not an origin (use e.g. https://www.example.com, without a path)", o)
		}
	}
	l.validateWebhooks(c, bad)
	if len(c.Mailboxes) == 0 {
		c.Mailboxes = nil
	}
	names := map[string]int{}
	for i := range c.Mailboxes {
		m := &c.Mailboxes[i]
		key := fmt.Sprintf("mailboxes[%d]", i)
		checkName(bad, names, "mailboxes", i, &m.Name, "support")
		m.Address = strings.TrimSpace(m.Address)
		if m.Address == "" {
			bad(key+".address", "required (e.g. support@example.com)")
		} else if a, err := mail.ParseAddress(m.Address); err != nil {
			bad(key+".address", "%q is not an email address", m.Address)
		} else if a.Address != m.Address {
			bad(key+".address", "%q is not a bare address: use %q, and put a name in display_name", m.Address, a.Address)
		}

		im := &m.IMAP
		if im.TLS == "" {
			im.TLS = TLSImplicit
		}
		if im.Port == 0 {
			im.Port = 143
			if im.TLS == TLSImplicit {
				im.Port = 993
			}
		}
		if im.Folder == "" {
			im.Folder = "INBOX"
		}
		checkServer(bad, key+".imap", im.Host, im.Port)
		if im.Username == "" {
			bad(key+".imap.username", "required")
		}
		if im.Auth == "" {
			im.Auth = AuthPassword
		}
		if l.readPasswordFile(bad, key+".imap", &im.Password, im.PasswordFile) && im.Password == "" {
			bad(key+".imap.password", "required (set it here, in %s, or put it in a file named by password_file)", EnvName(key+".imap.password"))
		}
		if !m.ImportSince.IsSet() {
			m.ImportSince = LookbackOf(DefaultImportSince)
		}
		if m.PollInterval == 0 {
			m.PollInterval = Duration(time.Minute)
		} else if m.PollInterval < Duration(time.Second) {
			bad(key+".poll_interval", "%s: must be at least 1s (e.g. 60s)", m.PollInterval)
		}

		sm := &m.SMTP
		if sm.TLS == "" {
			sm.TLS = TLSImplicit
		}
		if sm.Port == 0 {
			switch sm.TLS {
			case TLSImplicit:
				sm.Port = 465
			case TLSStartTLS:
				sm.Port = 587
			default:
				sm.Port = 25
			}
		}
		checkServer(bad, key+".smtp", sm.Host, sm.Port)
		if sm.Auth == "" {
			sm.Auth = AuthPassword
		}
		if l.readPasswordFile(bad, key+".smtp", &sm.Password, sm.PasswordFile) {
			if sm.Username != "" && sm.Password == "" {
				bad(key+".smtp.password", "required with smtp.username (set it here, in %s, or put it in a file named by password_file)", EnvName(key+".smtp.password"))
			}
			if sm.Username == "" && sm.Password != "" {
				what := "password"
				if sm.PasswordFile != "" {
					what = "password_file"
				}
				bad(key+".smtp.username", "required with smtp.%s", what)
			}
		}
	}
	// The maps above are iterated in random order; report in file order
	// where known, then by message.
	slices.SortStableFunc(errs, func(a, b error) int {
		ea, eb := a.(*keyError), b.(*keyError)
		return cmp.Or(cmp.Compare(ea.src.line, eb.src.line), strings.Compare(ea.Error(), eb.Error()))
	})
	return errs
}

// readPasswordFile sets *password to the contents of file when file is
// set, reporting a file that cannot be read or a password set too under
// key (mailboxes[0].imap). It returns false when it reported a problem.
func (l *loader) readPasswordFile(bad func(key, format string, args ...any), key string, password *string, file string) bool {
	if file == "" {
		return true
	}
	if *password != "" {
		where := "password is set too"
		if src, ok := l.where[key+".password"]; ok && src.env != "" {
			where = "password is set too, in " + src.env
		} else if ok && src.line > 0 {
			where = fmt.Sprintf("password is set too, on line %d", src.line)
		}
		bad(key+".password_file", "%s: set one of password and password_file", where)
		return false
	}
	s, err := ReadSecretFile(file)
	if err != nil {
		bad(key+".password_file", "%v", err)
		return false
	}
	*password = s
	return true
}

// checkServer checks the host and port of a mail server.
func checkServer(bad func(key, format string, args ...any), key, host string, port int) {
	if host == "" {
		bad(key+".host", "required (e.g. mail.example.com)")
	} else if strings.ContainsAny(host, " /:@") && net.ParseIP(host) == nil {
		bad(key+".host", "%q is not a host name or IP address (give the port in port)", host)
	}
	if port < 1 || port > 65535 {
		bad(key+".port", "%d is not a port (use 1 to 65535)", port)
	}
}

// checkDatabaseURL returns what is wrong with a database URL, or "". The
// URL is not quoted in the message: it may hold a password.
func checkDatabaseURL(s string) string {
	const use = "use sqlite:PATH or postgres://USER:PASSWORD@HOST/DATABASE"
	switch {
	case s == "":
		return ""
	case isPostgresURL(s):
		u, err := url.Parse(s)
		if err != nil {
			return "not a valid URL (" + use + ")"
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return "no host in the PostgreSQL URL (" + use + ")"
		}
		return ""
	case strings.HasPrefix(s, "sqlite://"):
		if strings.TrimPrefix(s, "sqlite://") == "" {
			return "no file name after sqlite:// (" + use + ")"
		}
		return ""
	case strings.HasPrefix(s, "sqlite:"), strings.HasPrefix(s, "file:"):
		_, path, _ := strings.Cut(s, ":")
		if path == "" {
			return "no file name in the SQLite URL (" + use + ")"
		}
		return ""
	}
	scheme, _, ok := strings.Cut(s, ":")
	if !ok || strings.ContainsAny(scheme, "/@ ") {
		return "not a database URL (" + use + ")"
	}
	return fmt.Sprintf("unsupported database %q (%s)", scheme, use)
}

// validPort reports whether s is a TCP port number; 0 (any free port) only
// if zeroOK.
func validPort(s string, zeroOK bool) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && (n > 0 || zeroOK)
}

// validCookieName reports whether s is a token as RFC 6265 requires of a
// cookie name.
func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return true
}

// validateWebhooks checks the webhooks section: networks, bounds, and
// each endpoint's name, URL, events and secret (the events' names and
// the secret's form are checked again by the store, which owns them).
func (l *loader) validateWebhooks(c *Config, bad func(key, format string, args ...any)) {
	w := &c.Webhooks
	if len(w.AllowNetworks) == 0 {
		w.AllowNetworks = nil
	}
	for i, n := range w.AllowNetworks {
		if _, err := ParseNetwork(n); err != nil {
			bad(fmt.Sprintf("webhooks.allow_networks[%d]", i), "%q is not a network (use e.g. 10.20.0.0/16 or 127.0.0.1)", n)
		}
	}
	if w.Timeout < Duration(time.Second) || w.Timeout > Duration(5*time.Minute) {
		bad("webhooks.timeout", "%s: must be 1s to 5m (e.g. 10s)", w.Timeout)
	}
	if w.RetryFor < Duration(time.Hour) {
		bad("webhooks.retry_for", "%s: must be at least 1h (e.g. 24h)", w.RetryFor)
	}
	if w.Concurrency < 1 || w.Concurrency > 1024 {
		bad("webhooks.concurrency", "must be 1 to 1024")
	}
	if len(w.Endpoints) == 0 {
		w.Endpoints = nil
	}
	names := map[string]int{}
	for i := range w.Endpoints {
		e := &w.Endpoints[i]
		key := fmt.Sprintf("webhooks.endpoints[%d]", i)
		checkName(bad, names, "webhooks.endpoints", i, &e.Name, "crm")
		if u, err := url.Parse(e.URL); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil {
			bad(key+".url", "%q is not an absolute http(s) URL (use e.g. https://crm.example.com/hooks/microchat)", e.URL)
		}
		if len(e.Events) == 0 {
			bad(key+".events", "required: the event types it receives (e.g. [conversation.created, message.created])")
		}
		if e.SecretFile != "" {
			if e.Secret != "" {
				bad(key+".secret_file", "secret is set too: set one of secret and secret_file")
				continue
			}
			sec, err := ReadSecretFile(e.SecretFile)
			if err != nil {
				bad(key+".secret_file", "%v", err)
				continue
			}
			e.Secret = sec
		}
		if !strings.HasPrefix(e.Secret, "whsec_") {
			bad(key+".secret", "required: whsec_ and the base64 of 24 to 64 random bytes (set it here, in %s, or in a file named by secret_file)", EnvName(key+".secret"))
		}
	}
}

// ParseNetwork parses a network of webhooks.allow_networks: a CIDR
// prefix ("10.20.0.0/16", "fd00::/8") or one address ("127.0.0.1"), in
// its canonical form (IPv4-mapped addresses are taken as IPv4).
func ParseNetwork(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkName trims the name of entry i of the list (mailboxes,
// webhooks.endpoints) and reports it missing, or the same as an earlier
// entry's: names maps the names seen so far to their entry.
func checkName(bad func(key, format string, args ...any), names map[string]int, list string, i int, name *string, example string) {
	key := fmt.Sprintf("%s[%d].name", list, i)
	*name = strings.TrimSpace(*name)
	first, dup := names[*name]
	switch {
	case *name == "":
		bad(key, "required (e.g. %s)", example)
	case dup:
		bad(key, "%q is also the name of %s[%d]; names must be unique", *name, list, first)
	default:
		names[*name] = i
	}
}
