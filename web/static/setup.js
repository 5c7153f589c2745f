// setup.js: creates the first admin with the one-time token of the setup
// link, /setup#token=... (a fragment, so it never reaches a server log).
import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";

if (!token) {
  $("no-token").hidden = false;
  $("setup-form").hidden = true;
}

$("setup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("setup-error").textContent = "";
  try {
    await api("POST", "/setup", {
      token,
      email: $("email").value,
      name: $("name").value,
      password: $("password").value,
    });
    history.replaceState(null, "", "/setup");
    $("setup-form").hidden = true;
    $("done").hidden = false;
  } catch (err) {
    $("setup-error").textContent = err.message;
  }
});
