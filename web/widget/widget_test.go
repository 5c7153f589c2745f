package widget

import (
	"bytes"
	"compress/gzip"
	"os"
	"strings"
	"testing"
)

// maxGzip is the budget for the widget, script and styles: 25 KB
// gzipped.
const maxGzip = 25 << 10

// The committed bundle is what the sources make: run go generate
// ./web/widget after editing them.
func TestBundleFresh(t *testing.T) {
	want, err := Bundle()
	if err != nil {
		t.Fatalf("Bundle() = %v", err)
	}
	got, err := os.ReadFile(Output)
	if err != nil {
		t.Fatalf("reading %s: %v", Output, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("web/static/widget.js is stale: run go generate ./web/widget and commit it")
	}
}

func TestBundleSize(t *testing.T) {
	b, err := os.ReadFile(Output)
	if err != nil {
		t.Fatalf("reading %s: %v", Output, err)
	}
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	w.Write(b)
	w.Close()
	t.Logf("widget.js: %d bytes, %d gzipped (budget %d)", len(b), z.Len(), maxGzip)
	if z.Len() > maxGzip {
		t.Fatalf("widget.js is %d bytes gzipped, over the budget of %d", z.Len(), maxGzip)
	}
}

// The bundle refuses what it cannot concatenate safely.
func TestParseRefuses(t *testing.T) {
	for _, src := range []string{
		`import x from "./a.js";`,
		`import * as a from "./a.js";`,
		`import { a as b } from "./a.js";`,
		"import {\n\ta,\n} from \"./a.js\";",
		`export default function () {}`,
		`export { a };`,
	} {
		if _, err := parse("m.js", src); err == nil {
			t.Errorf("parse(%q) = nil error", src)
		}
	}
	m, err := parse("m.js", "import { a, b } from \"./x.js\";\n// comment\n\nexport function f() {\n\tconst inner = 1;\n}\nconst g = 2;\n")
	if err != nil {
		t.Fatalf("parse() = %v", err)
	}
	if strings.Join(m.imports["x.js"], ",") != "a,b" || !m.exports["f"] || m.exports["g"] || strings.Join(m.decls, ",") != "f,g" {
		t.Fatalf("parse() = %+v", m)
	}
	if body := strings.Join(m.body, "\n"); body != "function f() {\n\tconst inner = 1;\n}\nconst g = 2;" {
		t.Fatalf("body = %q", body)
	}
}

func TestMinifyCSS(t *testing.T) {
	got := minifyCSS("/* c */\n.a > .b ,\n.c:hover {\n  color: red;\n  margin: 0 auto;\n}\n.d :focus { x: calc(100% - 2px); }\n")
	want := ".a>.b,.c:hover{color:red;margin:0 auto}.d :focus{x:calc(100% - 2px)}"
	if got != want {
		t.Fatalf("minifyCSS() = %q, want %q", got, want)
	}
}
