import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TollgateCore

/// `POST /integrations/slack/interactions`: where Slack sends the clicks on the Approve and Deny buttons of
/// `slack`-format messages, and the deny dialog's submission.
///
/// A request is taken only with a valid `X-Slack-Signature` (v0, under `slack.signing_secret`) whose timestamp is within
/// 5 minutes, once (``SlackReplayGuard``), and only from a Slack member that `reviewers[].slack_user_id` maps to a
/// reviewer who may decide. The decision is the one `/v1` and the reviewer page make (``ApprovalDecisions``), so
/// roles, quorum, self-approval, the request's reviewers and single use hold alike. Slack is answered at once (it waits 3 s at most); the decision, `views.open`
/// and the message's update through `response_url` follow.
struct SlackInteractionRoutes: Sendable {
    static let path = "integrations/slack/interactions"
    /// Slack's interaction payloads are a few KiB.
    static let maxBodyBytes = 64 * 1024

    let book: ApprovalBook
    let decisions: ApprovalDecisions
    /// The reviewers in force (reloaded with the configuration file).
    let live: LiveConfig
    let baseURL: String
    let slack: SlackClient
    let replays: SlackReplayGuard
    let logger: Logger

    /// Reviewers by Slack member id, as the configuration in force says.
    var reviewers: [String: ReviewerConfig] { live.snapshot.reviewersBySlackID }

    init(config: SlackConfig, book: ApprovalBook, live: LiveConfig, baseURL: String, logger: Logger) {
        self.book = book
        self.decisions = ApprovalDecisions(book: book, logger: logger)
        self.live = live
        self.baseURL = baseURL
        self.slack = SlackClient(config: config, logger: logger)
        self.replays = SlackReplayGuard()
        self.logger = logger
    }

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.post(RouterPath(Self.path)) { request, _ in await handle(request) }
    }

    func handle(_ request: Request) async -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > Self.maxBodyBytes {
            return refuse(.contentTooLarge, "the body is larger than \(Self.maxBodyBytes) bytes")
        }
        let body: [UInt8]
        do {
            var buffer = try await request.body.collect(upTo: Self.maxBodyBytes)
            body = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            return refuse(.contentTooLarge, "the body is larger than \(Self.maxBodyBytes) bytes")
        } catch {
            return refuse(.badRequest, "the body could not be read")
        }
        let timestamp = request.headers[HTTPField.Name("X-Slack-Request-Timestamp")!]
        let signature = request.headers[HTTPField.Name("X-Slack-Signature")!]
        if case .failure(let refusal) = SlackSignature.check(
            body: body, timestamp: timestamp, signature: signature, secret: slack.config.signingSecret, now: Date())
        {
            return refuse(.unauthorized, "\(refusal)")
        }
        guard replays.firstUse(signature ?? "", now: Date()) else {
            return refuse(.conflict, "this signed request was already taken (a replay)")
        }
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            return refuse(.unsupportedMediaType, "the body must be application/x-www-form-urlencoded, as Slack sends it")
        }
        let interaction: SlackInteraction
        do {
            interaction = try SlackInteraction.parse(form: body)
        } catch {
            return refuse(.badRequest, error.description)
        }
        switch interaction {
        case .ignored(let type):
            logger.debug("slack: interaction ignored", metadata: ["type": "\(type)"])
            return Self.answer(.ok)
        case .click(let click):
            return self.click(click)
        case .denySubmitted(let submission):
            return denySubmitted(submission)
        }
    }

    // MARK: - A click

    private func click(_ click: SlackInteraction.Click) -> Response {
        let action = click.approve ? "approve" : "deny"
        guard let reviewer = reviewer(click.userID, action: action, responseURL: click.responseURL) else { return Self.answer(.ok) }
        guard let id = UUID(uuidString: click.approvalID) else { return refuse(.badRequest, "the button's value is not an approval id") }
        if click.approve {
            Task { await approve(id, as: reviewer, responseURL: click.responseURL) }
        } else {
            Task { await openDenyDialog(id, as: reviewer, click: click) }
        }
        return Self.answer(.ok)
    }

    /// The reviewer a Slack member is, when they may decide; otherwise `nil`, after logging the refusal and telling the
    /// member (only them) through the response URL.
    private func reviewer(_ userID: String, action: String, responseURL: String?) -> ReviewerConfig? {
        let problem: String
        if let reviewer = reviewers[userID] {
            guard let refusal = ApprovalDecisions.mayDecide(reviewer) else { return reviewer }
            problem = refusal.message
        } else {
            problem = "your Slack member id \(userID.prefix(32)) is not any reviewer's slack_user_id in the gateway's configuration"
        }
        logger.warning(
            "slack: a click was refused", metadata: ["slack_user": "\(userID.prefix(32))", "action": "\(action)", "reason": "\(problem)"])
        let slack = slack
        Task { await slack.respond(to: responseURL, SlackBlocks.ephemeral("Tollgate refused your \(action): \(problem).")) }
        return nil
    }

    private func approve(_ id: UUID, as reviewer: ReviewerConfig, responseURL: String?) async {
        await decide(id, as: reviewer, .approve(comment: nil), responseURL: responseURL)
    }

    private func openDenyDialog(_ id: UUID, as reviewer: ReviewerConfig, click: SlackInteraction.Click) async {
        do {
            guard let approval = try await book.load(id) else {
                logger.warning("slack: a click named no approval", metadata: ["approval": "\(id.lowercasedString)", "reviewer": "\(reviewer.id)"])
                await slack.respond(to: click.responseURL, SlackBlocks.ephemeral("There is no approval with id \(id.lowercasedString)."))
                return
            }
            // The rules a denial would meet, asked before the reviewer writes a reason (they are asked again on submission).
            if case .failure(let refusal) = approval.deny(by: reviewer.id, reason: "-", now: Date()) {
                logger.notice(
                    "slack: deny refused", metadata: ["approval": "\(id.lowercasedString)", "reviewer": "\(reviewer.id)", "code": "\(refusal.code)"])
                let note = "\(reviewer.id) could not deny: \(refusal.description)."
                await slack.respond(to: click.responseURL, SlackBlocks.update(approval, note: note, baseURL: baseURL, now: Date()))
                return
            }
            guard let trigger = click.triggerID else {
                await slack.respond(to: click.responseURL, SlackBlocks.ephemeral("Slack sent no trigger_id, so the dialog cannot open."))
                return
            }
            if let problem = await slack.openView(triggerID: trigger, SlackBlocks.denyDialog(approval, responseURL: click.responseURL)) {
                await slack.respond(to: click.responseURL, SlackBlocks.ephemeral("\(problem); deny from the request's page instead."))
            }
        } catch {
            await unavailable(error, id: id, responseURL: click.responseURL)
        }
    }

    // MARK: - The deny dialog

    private func denySubmitted(_ submission: SlackInteraction.DenySubmission) -> Response {
        guard let reviewer = reviewers[submission.userID], ApprovalDecisions.mayDecide(reviewer) == nil else {
            logger.warning(
                "slack: a denial was refused", metadata: ["slack_user": "\(submission.userID.prefix(32))", "reason": "not a reviewer who may decide"])
            return Self.json(SlackBlocks.dialogError("Your Slack account is not one of a Tollgate reviewer who may decide."))
        }
        guard let reason = submission.reason, !reason.allSatisfy(\.isWhitespace) else {
            return Self.json(SlackBlocks.dialogError("A denial needs a reason; the agent is shown it."))
        }
        if ApprovalDecisions.textProblem(reason, field: "reason") != nil {
            return Self.json(SlackBlocks.dialogError("The reason may have at most \(ApprovalDecisions.maxTextLength) characters."))
        }
        guard let id = UUID(uuidString: submission.approvalID) else { return refuse(.badRequest, "the dialog's approval id is not an id") }
        Task { await decide(id, as: reviewer, .deny(reason: reason), responseURL: submission.responseURL) }
        return Self.answer(.ok)
    }

    // MARK: - Telling

    /// Decides as `reviewer` (the rules of ``ApprovalDecisions``) and updates the message to say what happened.
    private func decide(_ id: UUID, as reviewer: ReviewerConfig, _ verdict: ApprovalDecisions.Verdict, responseURL: String?) async {
        let action = if case .approve = verdict { "approve" } else { "deny" }
        let metadata: Logger.Metadata = ["approval": "\(id.lowercasedString)", "reviewer": "\(reviewer.id)", "via": "slack"]
        do {
            let approval = try await decisions.decide(id, by: reviewer, verdict)
            logger.info("slack: \(action) taken", metadata: metadata.merging(["status": "\(approval.status.rawValue)"]) { $1 })
            let note: String
            switch approval.status {
            case .approved: note = "Approved by \(approval.grants.map(\.reviewer).joined(separator: ", ")) (\(reviewer.id) in Slack)."
            case .denied: note = "Denied by \(reviewer.id) in Slack."
            default:
                let missing = approval.request.quorum - approval.grants.count
                note = "\(reviewer.id) approved in Slack: \(approval.grants.count) of \(approval.request.quorum); \(missing) more needed."
            }
            await slack.respond(to: responseURL, SlackBlocks.update(approval, note: note, baseURL: baseURL, now: Date()))
        } catch let problem as ApprovalRoutes.Problem {
            logger.notice("slack: \(action) refused", metadata: metadata.merging(["code": "\(problem.code)"]) { $1 })
            var approval: Approval?
            if problem.code != "not_found" { approval = (try? await book.load(id)) ?? nil }
            if let approval {
                let note = "\(reviewer.id) could not \(action): \(problem.message)."
                await slack.respond(to: responseURL, SlackBlocks.update(approval, note: note, baseURL: baseURL, now: Date()))
            } else {
                await slack.respond(to: responseURL, SlackBlocks.ephemeral("Tollgate refused your \(action): \(problem.message)."))
            }
        } catch {
            await unavailable(error, id: id, responseURL: responseURL)
        }
    }

    private func unavailable(_ error: any Error, id: UUID, responseURL: String?) async {
        logger.error("slack: the decision could not be made", metadata: ["approval": "\(id.lowercasedString)", "error": "\(error)"])
        await slack.respond(
            to: responseURL, SlackBlocks.ephemeral("Tollgate could not record the decision now (its database is unavailable); try again."))
    }

    // MARK: - Answers

    private func refuse(_ status: HTTPResponse.Status, _ reason: String) -> Response {
        logger.warning("slack: a request was refused", metadata: ["status": "\(status.code)", "reason": "\(reason)"])
        return Self.answer(status, reason)
    }

    static func answer(_ status: HTTPResponse.Status, _ text: String = "") -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text.isEmpty ? "" : text + "\n")))
    }

    static func json(_ value: JSONValue) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: value.canonicalJSON)))
    }
}
