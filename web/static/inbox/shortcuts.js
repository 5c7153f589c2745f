// shortcuts.js: the dashboard's keyboard shortcuts (docs/dashboard.md,
// "Keyboard shortcuts"). They act only when the focus is not in a text
// field (the composer's "/" opens saved replies there), and never with
// Ctrl, Alt or Cmd held. "?" shows them all.
import { h } from "/static/shared/dom.js";

// SHORTCUTS are the keys and what they do, as the help shows them.
const SHORTCUTS = [
  [["j", "\u2193"], "Next conversation in the list"],
  [["k", "\u2191"], "Previous conversation in the list"],
  [["Enter"], "Open the selected conversation"],
  [["/"], "Search"],
  [["1", "2", "3", "4"], "Unassigned, Mine, All open, Closed"],
  [["r"], "Reply: focus the message box"],
  [["Esc"], "Leave the search or close this help"],
  [["?"], "Show these shortcuts"],
];

const COLUMNS = ["unassigned", "mine", "open", "closed"];

// typing reports whether the element takes text (where keys are the
// user's, not shortcuts).
function typing(el) {
  if (!el || el === document.body) return false;
  if (el.isContentEditable) return true;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  return tag === "INPUT" && !["button", "checkbox", "radio", "submit", "reset", "range", "color", "file"].includes(el.type);
}

// swallow keeps a shortcut's own character out of the field it moves the
// focus to: the keydown's preventDefault does not stop a character that
// comes as its own event (a keypress or beforeinput after the keydown, as
// drivers and some input methods send it). Until the key is released,
// (or for at most a second) that character is dropped.
function swallow(key) {
  const stop = (ev) => {
    if (ev.key === key || ev.data === key) ev.preventDefault();
  };
  const done = (ev) => {
    if (ev && ev.key !== key) return;
    clearTimeout(timer);
    window.removeEventListener("keypress", stop, true);
    window.removeEventListener("beforeinput", stop, true);
    window.removeEventListener("keyup", done, true);
  };
  // A keyup that never comes (the window lost focus) ends it too.
  const timer = setTimeout(done, 1000);
  window.addEventListener("keypress", stop, true);
  window.addEventListener("beforeinput", stop, true);
  window.addEventListener("keyup", done, true);
}

export function mount(_el, ctx) {
  const dialog = h(
    "dialog",
    { class: "shortcut-help", "aria-labelledby": "shortcut-help-title" },
    h("h2", { id: "shortcut-help-title", text: "Keyboard shortcuts" }),
    h(
      "table",
      { class: "shortcuts" },
      h(
        "tbody",
        null,
        SHORTCUTS.map(([keys, text]) =>
          h(
            "tr",
            null,
            h("td", null, keys.map((k, i) => [i ? " " : "", h("kbd", { text: k })])),
            h("td", { text }),
          ),
        ),
      ),
    ),
    h("form", { method: "dialog", class: "dialog-actions" }, h("button", { type: "submit" }, "Close")),
  );
  document.body.append(dialog);

  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target) || dialog.open || !document.getElementById("login").hidden) return;
    let handled = true;
    switch (e.key) {
      case "j":
        ctx.bus.emit("list:move", 1);
        break;
      case "k":
        ctx.bus.emit("list:move", -1);
        break;
      case "ArrowDown":
      case "ArrowUp":
        // In the list, list.js moves; elsewhere the page scrolls.
        handled = false;
        break;
      case "Enter":
        // A focused link or button acts itself.
        if (e.target !== document.body) handled = false;
        else ctx.bus.emit("list:open");
        break;
      case "/":
        swallow(e.key);
        ctx.bus.emit("list:search");
        break;
      case "?":
        dialog.showModal();
        break;
      case "r": {
        const box = document.querySelector('#thread textarea[aria-label="Message"]');
        if (box) {
          swallow(e.key);
          box.focus();
        } else handled = false;
        break;
      }
      case "1":
      case "2":
      case "3":
      case "4":
        if (location.hash.startsWith("#/c/") || location.hash === "#/" || location.hash === "") ctx.bus.emit("list:column", COLUMNS[Number(e.key) - 1]);
        else handled = false;
        break;
      default:
        handled = false;
    }
    if (handled) e.preventDefault();
  });

  return { help: () => dialog.showModal() };
}
