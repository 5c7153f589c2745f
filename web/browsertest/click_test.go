package browsertest

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// The harness's click lands on its element when the layout moves between
// the point's check and the click (as when an image loading scrolls the
// thread): here a button grows above the target just after the harness
// reads where the target is. The click that lands on that button instead
// is stopped before the page sees it, and the target is clicked again.
func TestClickAfterTheLayoutMoved(t *testing.T) {
	url := site(t, map[string]string{"/": `<!doctype html><body style="margin:0">
<button id="decoy" style="display:block;width:200px;height:0;padding:0;border:0;overflow:hidden">Decoy</button>
<button id="target" style="display:block;width:200px;height:40px">Target</button>
<script>
	window.clicks = { decoy: 0, target: 0 };
	for (const id of ["decoy", "target"]) document.getElementById(id).addEventListener("click", () => window.clicks[id]++);
	// The second read of the target's box (the harness's check, then the
	// point it clicks) moves the layout once it is read: the decoy takes
	// the target's place.
	const target = document.getElementById("target");
	const rect = target.getBoundingClientRect;
	let reads = 0;
	target.getBoundingClientRect = function () {
		const r = rect.call(this);
		if (++reads === 2) document.getElementById("decoy").style.height = "40px";
		return r;
	};
</script>`}, "")
	p := visitor(t, newBrowser(t))
	p.do("open the page", chromedp.Navigate(url+"/"))
	p.click("Target", `document.getElementById("target")`)
	if got := eval[map[string]int](p, `window.clicks`); got["target"] != 1 || got["decoy"] != 0 {
		t.Fatalf("clicks = %v, want the target's only", got)
	}
}
