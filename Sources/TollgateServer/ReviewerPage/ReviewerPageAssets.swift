/// The reviewer page's script and stylesheet, compiled into the binary and served at `/ui/static/<name>`: nothing is
/// loaded from anywhere else, and nothing is inline (the Content-Security-Policy allows only these).
enum ReviewerPageAssets {
    struct Asset: Sendable {
        var name: String
        var contentType: String
        var text: String
    }

    static let all = [
        Asset(name: "app.js", contentType: "text/javascript; charset=utf-8", text: script),
        Asset(name: "app.css", contentType: "text/css; charset=utf-8", text: stylesheet),
        Asset(name: "icon.svg", contentType: "image/svg+xml", text: icon),
    ]

    /// The tab's icon (so that browsers do not ask for `/favicon.ico`): a gate.
    static let icon = #"""
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0b4fa3"/>
        <path d="M3 12V5h10v7M3 8h10M6 5v7M10 5v7" stroke="#fff" stroke-width="1.5" fill="none"/></svg>

        """#

    /// Keeps the pending table current: every 2 s it fetches `/ui/pending/rows` with the page's filters (the table's
    /// `data-rows`) and puts the rows in place when they changed, keeping the focus on the row it was in; a redirect (the
    /// session ended) reloads the page, which then goes to the sign-in page.
    static let script = #"""
        "use strict";
        (function () {
          var table = document.getElementById("pending");
          if (!table || !window.fetch) { return; }
          var body = table.tBodies[0];
          var empty = document.getElementById("pending-empty");
          var live = document.getElementById("live");
          var url = table.getAttribute("data-rows");
          var last = null;
          var count = body.rows.length;

          function place(html) {
            if (html === last) { return; }
            last = html;
            var focused = document.activeElement;
            var row = focused && body.contains(focused) ? focused.closest("tr") : null;
            var focusedID = row ? row.getAttribute("data-approval-id") : null;
            body.innerHTML = html;
            var rows = body.rows.length;
            table.hidden = rows === 0;
            if (empty) { empty.hidden = rows !== 0; }
            if (focusedID) {
              var again = body.querySelector('tr[data-approval-id="' + focusedID + '"] a');
              if (again) { again.focus(); }
            }
            if (live && rows !== count) {
              live.textContent = rows === 1 ? "1 pending approval." : rows + " pending approvals.";
            }
            count = rows;
          }

          function poll() {
            window.fetch(url, { credentials: "same-origin", redirect: "manual", cache: "no-store" })
              .then(function (response) {
                if (response.type === "opaqueredirect" || response.status === 303 || response.status === 401) {
                  window.location.reload();
                  return null;
                }
                if (!response.ok) { throw new Error("the gateway answered " + response.status); }
                return response.text();
              })
              .then(function (html) {
                if (html !== null) { place(html); }
                window.setTimeout(poll, 2000);
              })
              .catch(function (error) {
                if (live) { live.textContent = "Live updates paused (" + error.message + "); retrying."; }
                window.setTimeout(poll, 2000);
              });
          }
          window.setTimeout(poll, 2000);
        })();

        """#

    static let stylesheet = #"""
        :root {
          --text: #1b1b1b; --muted: #555; --back: #fff; --line: #c8c8c8; --accent: #0b4fa3; --focus: #b35900;
          --ok: #0d6b2b; --bad: #a0161b; --warn-back: #fff4d6; --error-back: #fde8e8; --notice-back: #e5f4ea;
          font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: var(--text); background: var(--back);
        }
        * { box-sizing: border-box; }
        body { margin: 0; }
        a { color: var(--accent); }
        :focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
        .skip { position: absolute; left: -999px; top: 0; background: var(--back); padding: .5rem; }
        .skip:focus { left: .5rem; }
        header.site { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; padding: .5rem 1rem;
          border-bottom: 1px solid var(--line); }
        .brand { font-weight: 700; margin: 0; }
        nav ul { list-style: none; display: flex; gap: 1rem; margin: 0; padding: 0; }
        nav a { padding: .5rem .25rem; display: inline-block; }
        nav a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
        .who { display: flex; gap: .75rem; align-items: center; margin-left: auto; }
        .who form { margin: 0; }
        main { padding: 1rem; max-width: 75rem; }
        main:focus { outline: none; }
        h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
        h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
        .muted, .hint { color: var(--muted); }
        label { display: block; font-weight: 600; margin: .5rem 0 .25rem; }
        input[type="text"], input[type="password"], textarea { width: 100%; max-width: 40rem; padding: .5rem; font: inherit;
          border: 1px solid #767676; border-radius: 4px; color: var(--text); background: var(--back); }
        button { font: inherit; padding: .5rem 1rem; min-height: 44px; border: 1px solid var(--accent); border-radius: 4px;
          background: var(--accent); color: #fff; cursor: pointer; }
        button.approve { background: var(--ok); border-color: var(--ok); }
        button.deny { background: var(--bad); border-color: var(--bad); }
        .who button { background: var(--back); color: var(--accent); padding: .25rem .75rem; }
        .stack > * + * { margin-top: .5rem; }
        .filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: flex-end; margin-bottom: 1rem; }
        .filters .field { flex: 1 1 12rem; }
        .filters label { margin-top: 0; }
        .error { background: var(--error-back); border-left: 4px solid var(--bad); padding: .5rem .75rem; }
        .notice { background: var(--notice-back); border-left: 4px solid var(--ok); padding: .5rem .75rem; }
        .warning { background: var(--warn-back); border-left: 4px solid var(--focus); padding: .5rem .75rem; }
        mark.invisible { background: #ffd54a; color: #000; border: 1px solid #8a6d00; border-radius: 2px; padding: 0 .1em; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; vertical-align: top; padding: .5rem; border-bottom: 1px solid var(--line); }
        thead th { border-bottom: 2px solid var(--text); }
        pre { background: #f4f4f4; border: 1px solid var(--line); padding: .75rem; overflow-x: auto; white-space: pre-wrap;
          word-break: break-word; }
        code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .95em; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
        dl.facts div { display: contents; }
        dt { font-weight: 600; }
        dd { margin: 0; overflow-wrap: anywhere; }
        .decide { display: grid; grid-template-columns: repeat(auto-fit, minmax(16rem, 1fr)); gap: 1rem 2rem; margin-top: 1rem; }
        .status-approved, .status-consumed { color: var(--ok); font-weight: 600; }
        .status-denied, .status-expired { color: var(--bad); font-weight: 600; }
        ol#history { padding-left: 1.5rem; }
        ol#history li { margin: .25rem 0; overflow-wrap: anywhere; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        figure.chart { margin: 0; }
        .chart-scroll { overflow-x: auto; }
        #decisions-chart { display: block; width: 100%; min-width: 36rem; height: auto; }
        ul.chart-legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1.5rem; }
        ul.chart-legend .swatch { vertical-align: -2px; }
        ul.chart-legend .meaning { color: var(--muted); }
        [hidden] { display: none !important; }
        @media (max-width: 40rem) {
          header.site { padding: .5rem; }
          .who { margin-left: 0; }
          main { padding: .75rem; }
          table.stack-on-phone thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
          table.stack-on-phone, table.stack-on-phone tbody, table.stack-on-phone tr, table.stack-on-phone td { display: block; width: 100%; }
          table.stack-on-phone tr { border: 1px solid var(--line); border-radius: 6px; margin-bottom: .75rem; padding: .25rem .5rem; }
          table.stack-on-phone td { border: none; padding: .25rem 0; }
          table.stack-on-phone td::before { content: attr(data-label); display: block; font-weight: 600; color: var(--muted); font-size: .85em; }
          dl.facts { grid-template-columns: 1fr; }
          dl.facts dd { margin-bottom: .5rem; }
        }

        """#
}
