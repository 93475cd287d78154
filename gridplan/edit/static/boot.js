/* gridplan edit — starts fetching the editor state while the page's other scripts load.
 * editor.js awaits window.__gridplanEarlyState (null on any failure: it then asks again and shows
 * the error). Loaded first, from <head>; no inline script (the page's CSP forbids them). */
(function () {
  "use strict";
  const t = new URL(location.href).searchParams.get("token") || sessionStorage.getItem("gridplan-edit-token") || "";
  if (!t) { window.__gridplanEarlyState = null; return; }
  window.__gridplanEarlyState = fetch("/api/state", { headers: { "X-Gridplan-Token": t }, credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null);
})();
