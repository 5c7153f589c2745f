package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		d    string
		want [][]point
	}{
		{"m 1,2 3,0 0,3 z", [][]point{{{2, 4}, {8, 4}, {8, 10}}}},
		// After z the next m is relative to the ring's start.
		{"m 1,1 1,0 0,1 z m 10,0 1,0 0,1 z", [][]point{{{2, 2}, {4, 2}, {4, 4}}, {{22, 2}, {24, 2}, {24, 4}}}},
		{"m 0.5,10e-1 -0.5,0", [][]point{{{1, 2}, {0, 2}}}},
	} {
		got, err := parsePath(tc.d)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parsePath(%q) = %v, %v; want %v", tc.d, got, err, tc.want)
		}
	}
	if _, err := parsePath("m 1,2 3"); err == nil {
		t.Errorf("parsePath(odd coordinates) = nil error")
	}
}

func TestSimplify(t *testing.T) {
	// A square with points along its edges and a 0.3-unit wobble keeps
	// its four corners only.
	ring := []point{{0, 0}, {5, 0.3}, {10, 0}, {10, 5}, {10, 10}, {5, 10}, {0, 10}, {0, 5.2}}
	got := simplify(ring, 0.7)
	want := []point{{0, 0}, {10, 0}, {10, 10}, {0, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("simplify() = %v, want %v", got, want)
	}
	if a := area(got); a != 100 {
		t.Fatalf("area() = %v, want 100", a)
	}
	// A crescent's marker lies inside it, not at its centroid.
	c := []point{{0, 0}, {10, 0}, {10, 10}, {0, 10}, {0, 8}, {8, 8}, {8, 2}, {0, 2}}
	p := inside(c)
	if !(p.x > 8 && p.x < 10) {
		t.Fatalf("inside(crescent) = %v, want x within 8..10", p)
	}
}

func TestModule(t *testing.T) {
	svg := `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50">
	<path d="m 10,10 20,0 0,10 -20,0 z m 50,0 0.1,0 0,0.1 z" aria-label="Big  Land" id="bl"/>
	<path d="m 1,1 1,0 0,1 z" aria-label="Island A" id="um-dq"/>
	<path d="m 5,1 1,0 0,1 z" aria-label="Island B" id="um-fq"/>
</svg>`
	m, err := parseSVG(strings.NewReader(svg))
	if err != nil {
		t.Fatalf("parseSVG() = %v", err)
	}
	js, err := m.module()
	if err != nil {
		t.Fatalf("module() = %v", err)
	}
	s := string(js)
	for _, want := range []string{
		"export const WIDTH = 200;",
		"export const HEIGHT = 100;",
		// The speck at 60,10 is left out; the big ring is framed and marked.
		`BL:["Big Land",40,30,20,20,40,20,"M20 20l40 0 0 20-40 0z"],`,
		// Both islands become UM; each is too small but one is kept as
		// the country's largest ring.
		`UM:["U.S. Minor Outlying Islands",`,
		"Creative Commons Attribution 4.0",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("module() lacks %q:\n%s", want, s)
		}
	}
}
