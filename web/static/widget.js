// Microchat widget (placeholder). Any page embeds it with
//   <script src="https://HOST/widget.js" async></script>
// It adds a "Live Chat" launcher in a Shadow DOM, so that the page's CSS
// and ours do not touch. The real chat replaces this script.
(() => {
  "use strict";
  if (window.__microchatWidget) return;
  window.__microchatWidget = true;

  const host = document.createElement("div");
  host.id = "microchat-widget";
  const root = host.attachShadow({ mode: "open" });

  const style = document.createElement("style");
  style.textContent = `
    :host { all: initial; }
    .launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
      font: 600 15px/1 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
      background: #2f6b4f; color: #fff; border: 0; border-radius: 999px;
      padding: 14px 20px; box-shadow: 0 6px 20px rgba(0,0,0,.2); cursor: pointer; }
    .launcher:focus-visible { outline: 3px solid #9fd3b5; outline-offset: 2px; }
    .panel { position: fixed; right: 20px; bottom: 76px; z-index: 2147483000; width: 280px;
      font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2a24;
      background: #fff; border-radius: 12px; padding: 16px; box-shadow: 0 10px 30px rgba(0,0,0,.2); }
    .panel[hidden] { display: none; }
    .panel p { margin: 0; }
  `;

  const button = document.createElement("button");
  button.type = "button";
  button.className = "launcher";
  button.textContent = "Live Chat";
  button.setAttribute("aria-expanded", "false");

  const panel = document.createElement("div");
  panel.className = "panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", "Live Chat");
  const text = document.createElement("p");
  text.textContent = "Live chat is coming soon. Meanwhile, please write to us by email.";
  panel.append(text);

  button.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    button.setAttribute("aria-expanded", String(!panel.hidden));
  });

  root.append(style, panel, button);
  const mount = () => document.body.append(host);
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
