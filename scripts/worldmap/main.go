// Command worldmap writes web/static/inbox/worldmap-data.js, the world map
// of the dashboard's visitor panel (spec rule 11: the contact's country on
// a map that needs no outside service), from the npm package
// @svg-maps/world 2.0.0 (the MapSVG world map by Victor Cazanave,
// CC BY 4.0, https://creativecommons.org/licenses/by/4.0/).
//
// It runs once, by hand, and its output is committed:
//
//	go generate ./scripts/worldmap
//
// fetches the package with `npm pack` (or reads -svg FILE), and for each
// country keeps one compact SVG path: the coordinates on a grid of half a
// unit of the original 1010x666 drawing, rings simplified with
// Douglas-Peucker (no library does this for SVG paths in Go, and it is
// forty lines), rings too small to see dropped, unless they are all the
// country has. Countries are keyed by ISO 3166-1 alpha-2 in upper case;
// the six U.S. Minor Outlying Islands become UM, and the Glorioso and Juan
// de Nova islands join TF, as in ISO 3166.
//
//go:generate go run . -out ../../web/static/inbox/worldmap-data.js
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// pkg is the npm package the map comes from, pinned.
const pkg = "@svg-maps/world@2.0.0"

// grid is how many output units make one unit of the original drawing.
const grid = 2

// tolerance is the Douglas-Peucker distance, in output units, under which
// a point is dropped.
const tolerance = 0.7

func main() {
	svgPath := flag.String("svg", "", "world.svg of "+pkg+" (default: npm pack it)")
	out := flag.String("out", "worldmap-data.js", "the JavaScript module to write")
	flag.Parse()
	if err := run(*svgPath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "worldmap:", err)
		os.Exit(1)
	}
}

func run(svgPath, out string) error {
	var src []byte
	var err error
	if svgPath != "" {
		src, err = os.ReadFile(svgPath)
	} else {
		src, err = npmWorldSVG()
	}
	if err != nil {
		return err
	}
	m, err := parseSVG(bytes.NewReader(src))
	if err != nil {
		return err
	}
	js, err := m.module()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, js, 0o644); err != nil {
		return err
	}
	fmt.Printf("worldmap: wrote %s (%d countries, %d bytes)\n", out, len(m.countries), len(js))
	return nil
}

// npmWorldSVG fetches the package with npm (which checks its integrity)
// into a temporary directory and returns its world.svg.
func npmWorldSVG() ([]byte, error) {
	dir, err := os.MkdirTemp("", "worldmap")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("npm", "pack", "--silent", "--pack-destination", dir, pkg)
	cmd.Stderr = os.Stderr
	name, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("npm pack %s: %w", pkg, err)
	}
	f, err := os.Open(filepath.Join(dir, strings.TrimSpace(string(name))))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("package/world.svg in %s: %w", pkg, err)
		}
		if h.Name == "package/world.svg" {
			return io.ReadAll(tr)
		}
	}
}

type point struct{ x, y float64 }

// country is one country of the map: its rings in output units.
type country struct {
	code, name string
	rings      [][]point
}

type worldMap struct {
	width, height float64 // output units
	countries     map[string]*country
}

// codes maps the package's ids that are not ISO 3166-1 alpha-2 codes.
var codes = map[string]string{
	"um-dq": "UM", "um-fq": "UM", "um-hq": "UM", "um-jq": "UM", "um-mq": "UM", "um-wq": "UM",
	"go": "TF", "ju": "TF",
}

// names replaces the package's names where the country's short name has
// changed since, or where several paths become one code.
var names = map[string]string{
	"UM": "U.S. Minor Outlying Islands",
	"SZ": "Eswatini",
	"MK": "North Macedonia",
	"CZ": "Czechia",
	"TF": "French Southern Territories",
	"BQ": "Bonaire, Sint Eustatius and Saba",
	"CC": "Cocos (Keeling) Islands",
	"MF": "Saint Martin (French part)",
	"SX": "Sint Maarten (Dutch part)",
}

// parseSVG reads the map's <svg viewBox> and its <path d aria-label id>s.
func parseSVG(r io.Reader) (*worldMap, error) {
	m := &worldMap{countries: map[string]*country{}}
	dec := xml.NewDecoder(r)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := map[string]string{}
		for _, a := range el.Attr {
			attr[a.Name.Local] = a.Value
		}
		switch el.Name.Local {
		case "svg":
			var x, y float64
			if _, err := fmt.Sscan(attr["viewBox"], &x, &y, &m.width, &m.height); err != nil {
				return nil, fmt.Errorf("viewBox %q: %w", attr["viewBox"], err)
			}
			m.width, m.height = m.width*grid, m.height*grid
		case "path":
			code := codes[attr["id"]]
			if code == "" {
				code = strings.ToUpper(attr["id"])
			}
			if len(code) != 2 {
				return nil, fmt.Errorf("path id %q is no country code", attr["id"])
			}
			rings, err := parsePath(attr["d"])
			if err != nil {
				return nil, fmt.Errorf("path %s: %w", code, err)
			}
			c := m.countries[code]
			if c == nil {
				name := names[code]
				if name == "" {
					name = strings.Join(strings.Fields(attr["aria-label"]), " ")
				}
				c = &country{code: code, name: name}
				m.countries[code] = c
			}
			c.rings = append(c.rings, rings...)
		}
	}
	if m.width == 0 || len(m.countries) == 0 {
		return nil, errors.New("no <svg viewBox> or no paths")
	}
	return m, nil
}

// parsePath reads a path of the package's form: relative moveto, implied
// relative lineto, closepath ("m 1,2 3,4 -5,6 z m ..."), in output units.
func parsePath(d string) ([][]point, error) {
	var rings [][]point
	var ring []point
	var cur, start point
	fields := strings.FieldsFunc(d, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '\t' })
	var nums []float64
	flush := func() error {
		if len(nums)%2 != 0 {
			return fmt.Errorf("odd number of coordinates")
		}
		for i := 0; i < len(nums); i += 2 {
			cur = point{cur.x + nums[i], cur.y + nums[i+1]}
			ring = append(ring, point{cur.x * grid, cur.y * grid})
		}
		nums = nums[:0]
		return nil
	}
	for _, f := range fields {
		for f != "" {
			switch f[0] {
			case 'm':
				if err := flush(); err != nil {
					return nil, err
				}
				if len(ring) > 0 {
					rings = append(rings, ring)
				}
				ring = nil
				f = f[1:]
				continue
			case 'z', 'Z':
				if err := flush(); err != nil {
					return nil, err
				}
				if len(ring) > 0 {
					start = ring[0]
					rings = append(rings, ring)
				}
				cur = point{start.x / grid, start.y / grid}
				ring = nil
				f = f[1:]
				continue
			}
			end := strings.IndexAny(f, "mzZ")
			if end < 0 {
				end = len(f)
			}
			v, err := strconv.ParseFloat(f[:end], 64)
			if err != nil {
				return nil, err
			}
			nums = append(nums, v)
			f = f[end:]
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(ring) > 0 {
		rings = append(rings, ring)
	}
	return rings, nil
}

// simplify is Douglas-Peucker on a closed ring, after snapping to the
// grid of output units; what is left has no two equal neighbours.
func simplify(ring []point, tol float64) []point {
	snapped := make([]point, 0, len(ring))
	for _, p := range ring {
		q := point{math.Round(p.x), math.Round(p.y)}
		if len(snapped) == 0 || snapped[len(snapped)-1] != q {
			snapped = append(snapped, q)
		}
	}
	for len(snapped) > 1 && snapped[0] == snapped[len(snapped)-1] {
		snapped = snapped[:len(snapped)-1]
	}
	if len(snapped) < 4 {
		return snapped
	}
	// Split the closed ring at its first point and the point farthest
	// from it, and simplify both halves as open lines.
	far := 0
	for i, p := range snapped {
		if dist2(p, snapped[0]) > dist2(snapped[far], snapped[0]) {
			far = i
		}
	}
	closed := append(append([]point{}, snapped...), snapped[0])
	a := dp(closed[:far+1], tol)
	b := dp(closed[far:], tol)
	return append(a[:len(a)-1], b[:len(b)-1]...)
}

// dp simplifies an open line, keeping its ends.
func dp(line []point, tol float64) []point {
	if len(line) < 3 {
		return line
	}
	first, last := line[0], line[len(line)-1]
	worst, at := 0.0, 0
	for i := 1; i < len(line)-1; i++ {
		if d := segDist(line[i], first, last); d > worst {
			worst, at = d, i
		}
	}
	if worst <= tol {
		return []point{first, last}
	}
	a := dp(line[:at+1], tol)
	b := dp(line[at:], tol)
	return append(a[:len(a)-1], b...)
}

func dist2(a, b point) float64 { return (a.x-b.x)*(a.x-b.x) + (a.y-b.y)*(a.y-b.y) }

// segDist is the distance from p to the segment a-b.
func segDist(p, a, b point) float64 {
	l2 := dist2(a, b)
	if l2 == 0 {
		return math.Sqrt(dist2(p, a))
	}
	t := math.Max(0, math.Min(1, ((p.x-a.x)*(b.x-a.x)+(p.y-a.y)*(b.y-a.y))/l2))
	return math.Sqrt(dist2(p, point{a.x + t*(b.x-a.x), a.y + t*(b.y-a.y)}))
}

// area is a ring's area (shoelace), always positive.
func area(ring []point) float64 {
	s := 0.0
	for i := range ring {
		j := (i + 1) % len(ring)
		s += ring[i].x*ring[j].y - ring[j].x*ring[i].y
	}
	return math.Abs(s) / 2
}

// inside returns a point well inside a ring, for its marker: on the
// horizontal line through the ring's centroid, the middle of the span
// inside the ring that holds the centroid, or else of the widest span (a
// crescent's centroid lies outside it).
func inside(ring []point) point {
	var cx, cy, a2 float64
	for i := range ring {
		p, q := ring[i], ring[(i+1)%len(ring)]
		cross := p.x*q.y - q.x*p.y
		a2 += cross
		cx += (p.x + q.x) * cross
		cy += (p.y + q.y) * cross
	}
	if a2 == 0 {
		return ring[0]
	}
	c := point{cx / (3 * a2), cy / (3 * a2)}
	var xs []float64
	for i := range ring {
		p, q := ring[i], ring[(i+1)%len(ring)]
		if (p.y <= c.y) != (q.y <= c.y) {
			xs = append(xs, p.x+(c.y-p.y)*(q.x-p.x)/(q.y-p.y))
		}
	}
	sort.Float64s(xs)
	best, width := c, -1.0
	for i := 0; i+1 < len(xs); i += 2 {
		mid := point{(xs[i] + xs[i+1]) / 2, c.y}
		if xs[i] <= c.x && c.x <= xs[i+1] {
			return mid
		}
		if w := xs[i+1] - xs[i]; w > width {
			best, width = mid, w
		}
	}
	return best
}

// bbox is a ring's bounding box.
func bbox(ring []point) (minX, minY, maxX, maxY float64) {
	minX, minY, maxX, maxY = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range ring {
		minX, maxX = math.Min(minX, p.x), math.Max(maxX, p.x)
		minY, maxY = math.Min(minY, p.y), math.Max(maxY, p.y)
	}
	return
}

// shape is a country as the module has it: its path, the point of its
// marker (the centre of its largest ring) and the box to frame it (the
// rings at least a quarter as large as the largest).
type shape struct {
	path               string
	cx, cy, x, y, w, h float64
}

// minArea is the smallest ring kept (in square output units) when the
// country has a larger one: smaller ones are invisible at any size the
// panel shows.
const minArea = 3

func (c *country) shape() shape {
	var s shape
	// The largest ring, measured before simplification, is the marker's
	// and is always kept, if only as a dot.
	largest, largestArea := 0, 0.0
	for i, r := range c.rings {
		if a := area(r); a > largestArea {
			largestArea, largest = a, i
		}
	}
	x0, y0, x1, y1 := bbox(c.rings[largest])
	p := inside(c.rings[largest])
	s.cx, s.cy = math.Round(p.x), math.Round(p.y)
	fx0, fy0, fx1, fy1 := x0, y0, x1, y1
	var b strings.Builder
	for i, r := range c.rings {
		simple := simplify(r, tolerance)
		a := area(simple)
		if i != largest && (len(simple) < 3 || a < minArea) {
			continue
		}
		if a >= largestArea/4 {
			rx0, ry0, rx1, ry1 := bbox(simple)
			fx0, fy0 = math.Min(fx0, rx0), math.Min(fy0, ry0)
			fx1, fy1 = math.Max(fx1, rx1), math.Max(fy1, ry1)
		}
		writeRing(&b, simple)
	}
	s.path = b.String()
	s.x, s.y, s.w, s.h = math.Floor(fx0), math.Floor(fy0), math.Ceil(fx1-fx0), math.Ceil(fy1-fy0)
	return s
}

// writeRing writes "M x y" then relative line-tos and "z"; a ring that
// simplified to a point or a line still draws (the stroke shows it).
func writeRing(b *strings.Builder, ring []point) {
	fmt.Fprintf(b, "M%s %s", num(ring[0].x), num(ring[0].y))
	if len(ring) == 1 {
		b.WriteString("h1")
	} else {
		b.WriteString("l")
		prev := ring[0]
		for i, p := range ring[1:] {
			dx, dy := num(p.x-prev.x), num(p.y-prev.y)
			if i > 0 && !strings.HasPrefix(dx, "-") {
				b.WriteByte(' ')
			}
			b.WriteString(dx)
			if !strings.HasPrefix(dy, "-") {
				b.WriteByte(' ')
			}
			b.WriteString(dy)
			prev = p
		}
	}
	b.WriteString("z")
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// module is the JavaScript module: the map's size and, by country code,
// [name, marker x, marker y, frame x, y, width, height, path].
func (m *worldMap) module() ([]byte, error) {
	codes := make([]string, 0, len(m.countries))
	for code := range m.countries {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	var b bytes.Buffer
	fmt.Fprintf(&b, `// worldmap-data.js: the world map of the visitor panel, written by
// scripts/worldmap (go generate ./scripts/worldmap); do not edit.
//
// Source: the npm package %s, "Map of World" by Victor Cazanave,
// based on the world map of MapSVG (https://mapsvg.com/maps/world),
// licensed under Creative Commons Attribution 4.0 International
// (CC BY 4.0, https://creativecommons.org/licenses/by/4.0/).
// Changes: coordinates doubled and rounded to whole units, outlines
// simplified (Douglas-Peucker, %.1f units), islands under %d square units
// left out, the U.S. Minor Outlying Islands merged into UM and the
// Scattered Islands into TF, some names updated to ISO 3166 short names.

// WIDTH and HEIGHT are the map's size, in the units of its paths.
export const WIDTH = %s;
export const HEIGHT = %s;

// COUNTRIES maps an ISO 3166-1 alpha-2 code to
// [name, marker x, marker y, frame x, frame y, frame width, frame height, SVG path].
export const COUNTRIES = {
`, pkg, tolerance, minArea, num(m.width), num(m.height))
	for _, code := range codes {
		c := m.countries[code]
		s := c.shape()
		row, err := json.Marshal([]any{c.name, s.cx, s.cy, s.x, s.y, s.w, s.h, s.path})
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s:%s,\n", code, row)
	}
	b.WriteString("};\n")
	return b.Bytes(), nil
}
