import TollgateCore

/// The frame every reviewer page shares: the document head (viewport, the page's stylesheet and script, nothing inline
/// and nothing from the internet), a skip link, the header with the main navigation, who is signed in and the
/// sign-out form, and the page's own content in `<main id="main">`.
///
/// `body` is HTML the caller built: every value in it must already be escaped (``HTML/escape(_:)``, ``HTML/text(_:)``).
///
/// ```swift
/// let html = ReviewerPageLayout.page(title: "History", session: session, current: .history, body: "<h1>History</h1>…")
/// return ReviewerPage.html(.ok, html)
/// ```
enum ReviewerPageLayout {
    /// The pages of the main navigation.
    enum Section: String, CaseIterable, Sendable {
        case pending, history, overview

        var title: String {
            switch self {
            case .pending: "Pending"
            case .history: "History"
            case .overview: "Overview"
            }
        }

        var path: String { "/ui/\(rawValue)" }
    }

    /// A whole page. Without a session (the sign-in page, errors before sign-in) the header has no navigation.
    static func page(title: String, session: ReviewerSession?, current: Section? = nil, body: String) -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="referrer" content="no-referrer">
            <title>\(HTML.escape(title.escapingInvisibles())) · Tollgate</title>
            <link rel="icon" href="/ui/static/icon.svg" type="image/svg+xml">
            <link rel="stylesheet" href="/ui/static/app.css">
            <script src="/ui/static/app.js" defer></script>
            </head>
            <body>
            <a class="skip" href="#main">Skip to content</a>
            <header class="site">
            <p class="brand">Tollgate</p>

            """
        if let session {
            html += "<nav aria-label=\"Main\"><ul>"
            for section in Section.allCases {
                let currentMark = section == current ? " aria-current=\"page\"" : ""
                html += "<li><a href=\"\(section.path)\"\(currentMark)>\(section.title)</a></li>"
            }
            html += "</ul></nav>\n"
            html += """
                <div class="who">
                <span id="reviewer">\(HTML.text(session.reviewer.id)) (\(session.reviewer.role.rawValue))</span>
                <form id="sign-out" method="post" action="/ui/sign-out">
                \(csrfField(session))
                <button type="submit">Sign out</button>
                </form>
                </div>

                """
        }
        html += """
            </header>
            <main id="main" tabindex="-1">
            \(body)
            </main>
            </body>
            </html>

            """
        return html
    }

    /// The hidden CSRF field every form of a signed-in page carries.
    static func csrfField(_ session: ReviewerSession) -> String {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(session.csrfToken))\">"
    }

    /// A refusal or error in words, for `<main>`: `<p role="alert" id="error">`.
    static func errorParagraph(_ message: String) -> String {
        "<p role=\"alert\" id=\"error\" class=\"error\">\(HTML.text(message))</p>"
    }

    /// A page that only says what went wrong (an unknown page, a refused form, the database away).
    static func errorPage(title: String, message: String, session: ReviewerSession?) -> String {
        var body = "<h1>\(HTML.escape(title))</h1>\n" + errorParagraph(message)
        body += session == nil ? "\n<p><a href=\"/ui/sign-in\">Sign in</a></p>" : "\n<p><a href=\"/ui/pending\">Pending approvals</a></p>"
        return page(title: title, session: session, body: body)
    }
}
