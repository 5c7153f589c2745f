// Command bundle writes the widget's bundle, web/static/widget.js; go
// generate runs it in web/widget (see package widget).
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/microdeets/microchat/web/widget"
)

func main() {
	b, err := widget.Bundle()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
	if old, err := os.ReadFile(widget.Output); err == nil && bytes.Equal(old, b) {
		return
	}
	if err := os.WriteFile(widget.Output, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
	fmt.Printf("bundle: wrote %s (%d bytes)\n", widget.Output, len(b))
}
