import Foundation
import XCTest

@testable import TollgateCore

/// One tool as a real MCP server publishes it, with the category and level a reviewer gave it by reading it.
private struct RealTool {
    let server: String
    let source: String
    let reason: String
    let json: JSONValue
    let category: RiskCategory
    let level: RiskLevel

    var name: String { json["name"]?.stringValue ?? "?" }
}

/// The table: `Fixtures/real-tools.json`, one row per tool, each with the `Tool` object as its server publishes it
/// in `tools/list` (name, description, the names of its input properties, and its annotations when it has any),
/// the server and the file it came from, the `category/level` a reviewer gave it by reading it, written down before
/// the classifier was run, and a one-line reason for the rating. docs/risk.md has the rubric.
private func loadRealTools() throws -> [RealTool] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/real-tools.json")
    let rows = try XCTUnwrap(try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)).arrayValue)
    return try rows.map { row in
        let expected = try XCTUnwrap(row["expect"]?.stringValue).split(separator: "/").map(String.init)
        XCTAssertEqual(expected.count, 2)
        return RealTool(
            server: try XCTUnwrap(row["server"]?.stringValue),
            source: try XCTUnwrap(row["source"]?.stringValue),
            reason: row["reason"]?.stringValue ?? "",
            json: try XCTUnwrap(row["tool"]),
            category: try XCTUnwrap(RiskCategory(rawValue: expected[0])),
            level: try XCTUnwrap(RiskLevel(rawValue: expected[1]))
        )
    }
}

/// How the classifier does on the table.
private struct TableFigures {
    var tools = 0
    var servers = 0
    var categoryRight = 0
    var levelRight = 0
    /// Tools the reviewer rated high or critical.
    var grave = 0
    /// Of those, the ones the classifier rated low or medium: the costly error.
    var underRated: [String] = []
    /// Every tool whose category or level differs, with the classifier's reasons.
    var wrong: [String] = []

    var categoryAccuracy: Double { Double(categoryRight) / Double(max(tools, 1)) }
    var levelAccuracy: Double { Double(levelRight) / Double(max(tools, 1)) }
    var underRatedShare: Double { Double(underRated.count) / Double(max(grave, 1)) }

    var summary: String {
        func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }
        return """
            \(tools) tools from \(servers) servers
            category accuracy \(percent(categoryAccuracy)) (\(categoryRight)/\(tools)), level accuracy \(percent(levelAccuracy)) (\(levelRight)/\(tools))
            high/critical rated low or medium: \(underRated.count) of \(grave) (\(percent(underRatedShare)))\(underRated.map { "\n  UNDER-RATED " + $0 }.joined())
            still wrong: \(wrong.count)\(wrong.map { "\n  " + $0 }.joined())
            """
    }
}

private func measureTable(_ classifier: RiskClassifier) throws -> TableFigures {
    let rows = try loadRealTools()
    var figures = TableFigures()
    figures.tools = rows.count
    figures.servers = Set(rows.map(\.server)).count
    for row in rows {
        let risk = classifier.classify(try ToolDescriptor(json: row.json))
        if risk.category == row.category { figures.categoryRight += 1 }
        if risk.level == row.level { figures.levelRight += 1 }
        let line = "\(row.server) \(row.name): expected \(row.category)/\(row.level), got \(risk.category)/\(risk.level) \(risk.reasons)"
        if row.level >= .high {
            figures.grave += 1
            if risk.level <= .medium { figures.underRated.append(line) }
        }
        if risk.category != row.category || risk.level != row.level { figures.wrong.append(line) }
    }
    return figures
}

final class RiskClassifierTests: XCTestCase {
    private let classifier = RiskClassifier()

    private func classify(
        _ name: String,
        _ description: String? = nil,
        properties: [String] = [],
        hints: ToolAnnotations? = nil
    ) -> RiskAssessment {
        let schema: JSONValue = .object([
            "type": .string("object"),
            "properties": .object(Dictionary(uniqueKeysWithValues: properties.map { ($0, .object([:])) })),
        ])
        return classifier.classify(ToolDescriptor(name: name, description: description, inputSchema: schema, annotations: hints))
    }

    // MARK: The table of real tools

    func testTableHasAtLeastThreeHundredDistinctRealToolsFromThirtyServers() throws {
        let realTools = try loadRealTools()
        XCTAssertGreaterThanOrEqual(realTools.count, 300)
        XCTAssertGreaterThanOrEqual(Set(realTools.map(\.server)).count, 30)
        let keys = realTools.map { "\($0.server)/\($0.name)" }
        XCTAssertEqual(Set(keys).count, keys.count, "a tool is listed twice")
        for row in realTools {
            // The source names the repository (and file) a reader can check the row against.
            XCTAssert(row.source.hasPrefix(row.server.split(separator: " ")[0]) || row.source.hasPrefix("a fork"), row.source)
            XCTAssertFalse(row.reason.isEmpty, "\(row.name) has no reason for its rating")
        }
    }

    /// Every category a reviewer can give and every level. `other` is the classifier's "cannot tell", never a
    /// reviewer's answer: a reviewer who reads a tool can always place it.
    func testTheTableCoversEveryCategoryButOtherAndEveryLevel() throws {
        let realTools = try loadRealTools()
        XCTAssertEqual(Set(realTools.map(\.category)), Set(RiskCategory.allCases).subtracting([.other]))
        XCTAssertEqual(Set(realTools.map(\.level)), Set(RiskLevel.allCases))
        // Each level the extended rubric adds is in the table: secrets read, privilege, disclosure, landing code.
        XCTAssert(realTools.contains { $0.category == .read && $0.level == .high })
        XCTAssert(realTools.contains { $0.category == .write && $0.level == .high })
    }

    /// The aim of issue 22: the classifier places at least 90% of the table's tools in the category a reviewer gave
    /// them. Prints the figures and every tool still wrong (`swift test --filter RiskClassifierTests`).
    func testCategoryAccuracyOnTheTableIsAtLeastNinetyPercent() throws {
        let figures = try measureTable(classifier)
        print("RiskClassifier on Fixtures/real-tools.json:\n" + figures.summary)
        XCTAssertGreaterThanOrEqual(figures.categoryAccuracy, 0.90, figures.summary)
    }

    /// The costly error: a tool a reviewer rated high or critical that the classifier rates low or medium. At most 2%
    /// of the high and critical tools may be under-rated.
    func testAtMostTwoPercentOfHighAndCriticalToolsAreUnderRated() throws {
        let figures = try measureTable(classifier)
        XCTAssertGreaterThan(figures.grave, 100)
        XCTAssertLessThanOrEqual(figures.underRatedShare, 0.02, figures.summary)
    }

    func testReasonsAreNeverEmpty() throws {
        for row in try loadRealTools() {
            XCTAssertFalse(classifier.classify(try ToolDescriptor(json: row.json)).reasons.isEmpty, row.name)
        }
        for name in ["", "x", "frobnicate", "___", "42"] {
            XCTAssertFalse(classify(name).reasons.isEmpty, "\"\(name)\"")
        }
    }

    func testClassificationIsDeterministic() throws {
        for row in try loadRealTools() {
            let tool = try ToolDescriptor(json: row.json)
            let first = classifier.classify(tool)
            for _ in 0..<5 { XCTAssertEqual(classifier.classify(tool), first, row.name) }
            XCTAssertEqual(RiskClassifier().classify(tool), first, row.name)
        }
        // Schema properties are read in sorted order, whatever order the dictionary holds them in.
        let many = (0..<50).map { "p\($0)" } + ["amount", "command"]
        let reasons = classify("create_thing", properties: many).reasons
        for _ in 0..<20 { XCTAssertEqual(classify("create_thing", properties: many.shuffled()).reasons, reasons) }
    }

    // MARK: Name splitting

    func testNamesSplitAtEveryConventionalBoundary() {
        XCTAssertEqual(ToolWords.split("delete_file"), ["delete", "file"])
        XCTAssertEqual(ToolWords.split("deleteFile"), ["delete", "file"])
        XCTAssertEqual(ToolWords.split("DeleteFile"), ["delete", "file"])
        XCTAssertEqual(ToolWords.split("delete-file"), ["delete", "file"])
        XCTAssertEqual(ToolWords.split("files.delete"), ["files", "delete"])
        XCTAssertEqual(ToolWords.split("mcp__github__delete_file"), ["mcp", "github", "delete", "file"])
        XCTAssertEqual(ToolWords.split("BinancePortfolioMarginRenewListenKey"), ["binance", "portfolio", "margin", "renew", "listen", "key"])
        XCTAssertEqual(ToolWords.split("executeSQLQuery"), ["execute", "sql", "query"])
        XCTAssertEqual(ToolWords.split("HTTPRequest"), ["http", "request"])
        XCTAssertEqual(ToolWords.split("get_ticker_24hr"), ["get", "ticker", "24", "hr"])
        XCTAssertEqual(ToolWords.split("  "), [])
    }

    func testSplittingMakesConventionsEquivalent() {
        let spellings = ["delete_repository", "deleteRepository", "delete-repository", "repository.delete", "DELETE_REPOSITORY"]
        for spelling in spellings {
            let risk = classify(spelling)
            XCTAssertEqual(risk.category, .destructive, spelling)
            XCTAssertEqual(risk.level, .critical, spelling)
        }
    }

    func testAWordInsideAnotherIsNotAMatch() {
        // "undelete" is not "delete", "scheduler" is not "schedule", "overrun" is not "run".
        XCTAssertEqual(classify("undelete_message").category, .other)
        XCTAssertEqual(classify("overrun_widget").category, .other)
    }

    // MARK: Annotations, one rule at a time

    func testReadOnlyHintMakesAnUnremarkableToolRead() {
        let risk = classify("frobnicate", hints: ToolAnnotations(readOnlyHint: true))
        XCTAssertEqual(risk.category, .read)
        XCTAssertEqual(risk.level, .low)
        XCTAssertEqual(risk.reasons, ["readOnlyHint=true"])
    }

    func testReadOnlyHintLowersAToolWhoseNameSuggestsAChange() {
        let risk = classify("pdf_save", hints: ToolAnnotations(readOnlyHint: true))
        XCTAssertEqual(risk.category, .read)
        XCTAssertEqual(risk.level, .low)
        XCTAssert(risk.reasons.contains { $0.contains("readOnlyHint=true overrides") }, "\(risk.reasons)")
    }

    func testReadOnlyHintOnADeletingToolIsAContradictionAndNotTrusted() {
        let risk = classify("delete_file", "Delete a file", hints: ToolAnnotations(readOnlyHint: true))
        XCTAssertEqual(risk.category, .destructive)
        XCTAssertEqual(risk.level, .high)
        XCTAssert(risk.reasons.contains("name contains \"delete\""), "\(risk.reasons)")
        XCTAssert(risk.reasons.contains { $0.contains("readOnlyHint=true contradicts \"delete\"") }, "\(risk.reasons)")
    }

    func testReadOnlyHintDoesNotLowerExecutingOrFinancialTools() {
        let shell = classify("run_command", hints: ToolAnnotations(readOnlyHint: true))
        XCTAssertEqual(shell.category, .execute)
        XCTAssertEqual(shell.level, .high)
        let transfer = classify("transfer_funds", properties: ["amount"], hints: ToolAnnotations(readOnlyHint: true))
        XCTAssertEqual(transfer.category, .financial)
        XCTAssertEqual(transfer.level, .critical)
        XCTAssert(transfer.reasons.contains { $0.contains("contradicts") })
    }

    func testDestructiveHintTrueIsBelievedEvenForAHarmlessName() {
        let risk = classify("sync_items", hints: ToolAnnotations(destructiveHint: true))
        XCTAssertEqual(risk.category, .destructive)
        XCTAssertEqual(risk.level, .high)
        XCTAssert(risk.reasons.contains("destructiveHint=true"))
    }

    func testDestructiveHintIsIgnoredOnAToolThatClaimsReadOnly() {
        // The specification: destructiveHint is meaningful only when readOnlyHint is false.
        let risk = classify("list_items", hints: ToolAnnotations(readOnlyHint: true, destructiveHint: true))
        XCTAssertEqual(risk.category, .read)
        XCTAssertEqual(risk.level, .low)
    }

    func testDestructiveHintFalseMakesAnUnplacedToolAWrite() {
        let risk = classify("frobnicate", hints: ToolAnnotations(readOnlyHint: false, destructiveHint: false))
        XCTAssertEqual(risk.category, .write)
        XCTAssertEqual(risk.level, .medium)
    }

    func testDestructiveHintFalseDoesNotLowerADeletingTool() {
        let risk = classify("drop_table", hints: ToolAnnotations(readOnlyHint: false, destructiveHint: false))
        XCTAssertEqual(risk.category, .destructive)
        XCTAssertEqual(risk.level, .critical)
        XCTAssert(risk.reasons.contains { $0.contains("destructiveHint=false contradicts \"drop\"") }, "\(risk.reasons)")
    }

    func testReadOnlyHintFalseRaisesAReadingName() {
        let risk = classify("get_or_create_session", hints: ToolAnnotations(readOnlyHint: false))
        XCTAssertEqual(risk.category, .write)
        XCTAssert(risk.reasons.contains("readOnlyHint=false"))
    }

    func testOpenWorldHintFalseKeepsATransferAtHigh() {
        let open = classify("transfer_funds", "Transfer funds between accounts", properties: ["amount"])
        XCTAssertEqual(open.level, .critical)
        let explicitlyOpen = classify("transfer_funds", properties: ["amount"], hints: ToolAnnotations(openWorldHint: true))
        XCTAssertEqual(explicitlyOpen.level, .critical)
        let closed = classify("transfer_funds", properties: ["amount"], hints: ToolAnnotations(openWorldHint: false))
        XCTAssertEqual(closed.category, .financial)
        XCTAssertEqual(closed.level, .high)
        XCTAssert(closed.reasons.contains("openWorldHint=false"))
    }

    func testIdempotentHintIsReportedButChangesNothing() {
        let plain = classify("update_record")
        let idempotent = classify("update_record", hints: ToolAnnotations(idempotentHint: true))
        XCTAssertEqual(plain.category, idempotent.category)
        XCTAssertEqual(plain.level, idempotent.level)
        XCTAssert(idempotent.reasons.contains { $0.hasPrefix("idempotentHint=true") })
    }

    func testTitleIsNeverUsedToClassify() {
        let risk = classify("frobnicate", hints: ToolAnnotations(title: "Delete everything"))
        XCTAssertEqual(risk.category, .other)
    }

    func testSpecificationDefaultsOfAnnotations() {
        let none = ToolAnnotations()
        XCTAssertFalse(none.isReadOnly)
        XCTAssertTrue(none.isDestructive)
        XCTAssertFalse(none.isIdempotent)
        XCTAssertTrue(none.isOpenWorld)
        XCTAssertFalse(ToolAnnotations(readOnlyHint: true, destructiveHint: true).isDestructive)
        XCTAssertFalse(ToolAnnotations(readOnlyHint: false, destructiveHint: false).isDestructive)
        XCTAssertFalse(ToolAnnotations(openWorldHint: false).isOpenWorld)
    }

    // MARK: Precedence

    func testFinancialDominatesDestructive() {
        let risk = classify("delete_invoice", hints: ToolAnnotations(destructiveHint: true))
        XCTAssertEqual(risk.category, .financial)
        XCTAssert(risk.reasons.contains("destructiveHint=true"))
    }

    func testDestructiveDominatesExecuteAndWrite() {
        XCTAssertEqual(classify("run_cleanup", "Deletes old build artifacts").category, .destructive)
        XCTAssertEqual(classify("update_file", "Overwrites the file with new content").category, .destructive)
        XCTAssertEqual(classify("sync_repo", "This cannot be undone.").category, .destructive)
        // Words with a harmless everyday sense do not count in a description.
        XCTAssertEqual(classify("move_card", "Perform drag and drop between two lists").category, .write)
        XCTAssertEqual(classify("send_report", "Output is truncated to 1000 lines").category, .write)
    }

    func testExecuteDominatesWrite() {
        XCTAssertEqual(classify("create_job", properties: ["command"]).category, .execute)
        XCTAssertEqual(classify("run_script").category, .execute)
    }

    func testAReadingNameReadsWhatFollowsItUnlessThatDestroysOrRuns() {
        XCTAssertEqual(classify("get_withdraw_history").category, .read)
        XCTAssertEqual(classify("list_orders").category, .read)
        XCTAssertEqual(classify("get_and_delete_message").category, .destructive)
        XCTAssertEqual(classify("query_then_execute").category, .execute)
    }

    func testANameEndingInARecordNounNamesTheRecord() {
        XCTAssertEqual(classify("withdraw_history").category, .read)
        XCTAssertEqual(classify("deposit_address", "Get a deposit address").category, .read)
        // A real verb before the record noun still counts.
        XCTAssertEqual(classify("update_config").category, .write)
        XCTAssertEqual(classify("delete_history").category, .destructive)
    }

    func testTheNameOutranksTheDescription() {
        // The description opens with "Execute", but the name says the tool reads.
        XCTAssertEqual(classify("read_query", "Execute a SELECT query").category, .read)
        // With no action word in the name, the description's first verb decides.
        XCTAssertEqual(classify("directory_tree", "Get a recursive tree view").category, .read)
        XCTAssertEqual(classify("ledger_entry", "This tool will transfer the balance").category, .financial)
    }

    func testSchemaPropertiesAreSignals() {
        let amount = classify("create_thing", properties: ["amount"])
        XCTAssertEqual(amount.category, .financial)
        XCTAssert(amount.reasons.contains("input schema has property \"amount\""))
        XCTAssertEqual(classify("frobnicate", properties: ["sql"]).category, .execute)
        XCTAssertEqual(classify("frobnicate", properties: ["command"]).level, .high)
        // A reading tool with an amount still only reads.
        XCTAssertEqual(classify("get_quote", properties: ["amount", "currency"]).category, .read)
        let path = classify("write_note", properties: ["path"])
        XCTAssertEqual(path.category, .write)
        XCTAssert(path.reasons.contains { $0.contains("\"path\"") })
    }

    func testAnUnplaceableToolIsOtherAtMedium() {
        let risk = classify("frobnicate", "Does the thing.")
        XCTAssertEqual(risk.category, .other)
        XCTAssertEqual(risk.level, .medium)
        XCTAssertEqual(risk.reasons.count, 1)
    }

    // MARK: Levels

    func testDestructiveLevels() {
        XCTAssertEqual(classify("delete_message").level, .high)
        XCTAssertEqual(classify("drop_table").level, .critical)
        XCTAssertEqual(classify("truncate_log").level, .critical)
        XCTAssertEqual(classify("force_push").level, .critical)
        XCTAssertEqual(classify("delete_database").level, .critical)
        XCTAssertEqual(classify("reset_branch").level, .high)
    }

    func testFinancialLevels() {
        XCTAssertEqual(classify("create_refund").level, .high)
        XCTAssertEqual(classify("charge_card").level, .high)
        XCTAssertEqual(classify("cancel_order").level, .high)
        XCTAssertEqual(classify("place_order").level, .critical)
        XCTAssertEqual(classify("withdraw").level, .critical)
        XCTAssertEqual(classify("execute_trade").level, .critical)
        XCTAssertEqual(classify("create_payout").level, .critical)
    }

    // MARK: Harm that verbs on objects miss (each rule on made-up tools of its class, and on ones outside it)

    private func assertRated(
        _ risk: RiskAssessment, _ category: RiskCategory, _ level: RiskLevel, _ tool: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual("\(risk.category)/\(risk.level)", "\(category)/\(level)", "\(tool): \(risk.reasons)", file: file, line: line)
    }

    func testAReadThatReturnsSecretsIsHigh() {
        let readOnly = ToolAnnotations(readOnlyHint: true)
        assertRated(classify("fetch_credentials", hints: readOnly), .read, .high, "fetch_credentials")
        assertRated(classify("vault_get_password"), .read, .high, "vault_get_password")
        assertRated(classify("show_cluster_config", "Returns the kubeconfig of the cluster"), .read, .high, "kubeconfig")
        assertRated(classify("dump_settings", "Prints every environment variable of the worker"), .read, .high, "env dump")
        assertRated(classify("get_object", properties: ["kind", "name"], hints: readOnly), .read, .high, "generic getter")
        assertRated(classify("list_things", properties: ["resource_type"]), .read, .high, "generic lister")
        assertRated(classify("get_api_key", properties: ["id"]), .read, .high, "api key")
        XCTAssert(classify("get_object", properties: ["kind"]).reasons.contains { $0.contains("generic getter") })
        // Outside the class: reads that name no secret, a describe that redacts, secret engines that are not secrets.
        assertRated(classify("get_weather", properties: ["city"]), .read, .low, "get_weather")
        assertRated(classify("scan_keys", properties: ["pattern"]), .read, .low, "redis keys")
        assertRated(classify("describe_object", properties: ["kind"]), .read, .low, "describe")
        assertRated(classify("list_mounts", "List the mounted secrets engines"), .read, .low, "list_mounts")
        assertRated(classify("get_teams", "Get teams, limited to orgs accessible with current credentials"), .read, .low, "auth")
        assertRated(classify("get_connection", "Returns the credentials for the database"), .read, .high, "credentials for")
    }

    func testAChangeOfPrivilegeIsHigh() {
        assertRated(classify("attach_role_policy", properties: ["role", "policy_arn"]), .write, .high, "attach policy")
        assertRated(classify("grant_permission"), .write, .high, "grant permission")
        assertRated(classify("create_api_key"), .write, .high, "create api key")
        assertRated(classify("rotate_token", "Create a new deploy token"), .write, .high, "token")
        assertRated(classify("add_member_to_team"), .write, .high, "add member")
        assertRated(classify("invite_collaborator"), .write, .high, "invite collaborator")
        assertRated(classify("create_service_account", properties: ["name", "roles"]), .write, .high, "roles")
        // Outside the class: an empty team, taking a policy away, an ordinary record.
        assertRated(classify("create_team", properties: ["name"]), .write, .medium, "create_team")
        assertRated(classify("detach_role_policy"), .write, .medium, "detach")
        assertRated(classify("add_comment", properties: ["body"]), .write, .medium, "add_comment")
        assertRated(classify("add_message", properties: ["role", "content"]), .write, .medium, "chat role")
    }

    func testADisclosureThatCannotBeCalledBackIsHigh() {
        assertRated(classify("forward_email", properties: ["to", "message_id"]), .write, .high, "forward_email")
        assertRated(classify("send_newsletter"), .write, .high, "newsletter")
        assertRated(classify("publish_package", properties: ["path"]), .write, .high, "publish_package")
        assertRated(classify("share_document", properties: ["document_id", "public"]), .write, .high, "public")
        let rule: JSONValue = .object([
            "type": .string("object"),
            "properties": .object([
                "criteria": .object([:]),
                "action": .object(["type": .string("object"), "properties": .object(["forward_to": .object([:])])]),
            ]),
        ])
        let forwarding = classifier.classify(ToolDescriptor(name: "create_mail_rule", inputSchema: rule))
        assertRated(forwarding, .write, .high, "nested forward_to")
        // Outside the class: a workspace chat message, a draft, a publish to an internal channel.
        assertRated(classify("post_message", properties: ["channel", "text"]), .write, .medium, "post_message")
        assertRated(classify("draft_email", "Draft a new email", properties: ["to", "subject"]), .write, .medium, "draft")
        assertRated(classify("publish", "Publish a message to a channel", properties: ["channel"]), .write, .medium, "publish")
    }

    func testACodePathHiddenInArgumentsRunsCode() {
        assertRated(classify("open_page", properties: ["url", "launchOptions"]), .execute, .high, "launchOptions")
        assertRated(classify("navigate", properties: ["url", "allow_dangerous"]), .execute, .high, "allow_dangerous")
        assertRated(classify("build_site"), .execute, .high, "build")
        assertRated(classify("make_image", properties: ["dockerfile", "tag"]), .execute, .high, "dockerfile")
        assertRated(classify("start_worker"), .execute, .high, "start a worker")
        assertRated(classify("restart_service"), .execute, .high, "restart a service")
        // Outside the class: starting a search, navigating with display options.
        assertRated(classify("start_search", properties: ["pattern"]), .read, .low, "start_search")
        assertRated(classify("open_page", properties: ["url", "headless"]), .other, .medium, "headless")
    }

    func testTradesAndLeverage() {
        assertRated(classify("close_short_position", properties: ["symbol"]), .financial, .critical, "close position")
        assertRated(classify("exit_positions"), .financial, .critical, "exit positions")
        assertRated(classify("exercise_option"), .financial, .critical, "exercise")
        assertRated(classify("change_leverage", properties: ["symbol", "leverage"]), .financial, .high, "leverage")
        assertRated(classify("adjust_settings", properties: ["max_margin_multiplier"]), .financial, .high, "margin")
        // Outside the class: a position on a screen, a page margin, reading positions.
        assertRated(classify("click_position", properties: ["x", "y"]), .write, .medium, "click_position")
        assertRated(classify("save_pdf", properties: ["margin", "path"]), .write, .medium, "page margin")
        assertRated(classify("get_open_positions"), .read, .low, "get positions")
    }

    func testLandingCodeOnABranchIsHigh() {
        assertRated(classify("git_push", properties: ["remote"]), .write, .high, "git_push")
        assertRated(classify("merge_branch", properties: ["source", "target"]), .write, .high, "merge_branch")
        assertRated(classify("commit_changes", properties: ["branch", "files", "message"]), .write, .high, "branch+files")
        // Outside the class: a new branch, a local commit, a queue push.
        assertRated(classify("create_branch", properties: ["branch", "from"]), .write, .medium, "create_branch")
        assertRated(classify("git_commit", properties: ["message", "repo_path"]), .write, .medium, "git_commit")
        assertRated(classify("lpush", "Push a value onto a list", properties: ["name", "value"]), .write, .medium, "lpush")
    }

    func testAContainerWidensTheDamageOnlyWhenItIsWhatIsDestroyed() {
        XCTAssertEqual(classify("delete_project").level, .critical)
        XCTAssertEqual(classify("delete_s3_bucket").level, .critical)
        XCTAssertEqual(classify("repository.delete").level, .critical)
        XCTAssertEqual(classify("delete_mount").level, .critical)
        XCTAssertEqual(classify("remove_member_from_project").level, .high)
        XCTAssertEqual(classify("delete_file_in_repo").level, .high)
    }

    func testGetOrCreateMayChange() {
        assertRated(classify("get_or_create_label"), .write, .medium, "get_or_create")
        assertRated(classify("get_or_delete_cache"), .destructive, .high, "get_or_delete")
    }

    // MARK: Reading tools from JSON

    func testDescriptorReadsAToolsListEntry() throws {
        let data = Data(
            #"""
            {"name": "delete_file", "title": "Delete", "description": "Delete a file", "icons": [],
             "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
             "annotations": {"title": "Delete file", "readOnlyHint": false, "destructiveHint": true, "openWorldHint": null}}
            """#.utf8
        )
        let tool = try ToolDescriptor(json: try JSONDecoder().decode(JSONValue.self, from: data))
        XCTAssertEqual(tool.name, "delete_file")
        XCTAssertEqual(tool.description, "Delete a file")
        XCTAssertEqual(tool.inputSchema?["properties"]?["path"]?["type"], .string("string"))
        XCTAssertEqual(tool.annotations, ToolAnnotations(title: "Delete file", readOnlyHint: false, destructiveHint: true))
    }

    func testDescriptorWithoutOptionalFields() throws {
        let tool = try ToolDescriptor(json: .object(["name": .string("ping")]))
        XCTAssertEqual(tool, ToolDescriptor(name: "ping"))
    }

    func testDescriptorRejectsMalformedTools() {
        func error(_ json: JSONValue) -> ToolDescriptorError? {
            do {
                _ = try ToolDescriptor(json: json)
                return nil
            } catch {
                return error
            }
        }
        XCTAssertEqual(error(.array([])), .notAnObject(path: ""))
        XCTAssertEqual(error(.object([:])), .missingName)
        XCTAssertEqual(error(.object(["name": .null])), .missingName)
        XCTAssertEqual(error(.object(["name": .number(1)])), .wrongType(path: "name", expected: "string"))
        XCTAssertEqual(error(.object(["name": .string("")])), .emptyName)
        XCTAssertEqual(
            error(.object(["name": .string("x"), "description": .bool(true)])),
            .wrongType(path: "description", expected: "string")
        )
        XCTAssertEqual(
            error(.object(["name": .string("x"), "inputSchema": .string("{}")])),
            .wrongType(path: "inputSchema", expected: "object")
        )
        XCTAssertEqual(
            error(.object(["name": .string("x"), "annotations": .array([])])),
            .wrongType(path: "annotations", expected: "object")
        )
        XCTAssertEqual(
            error(.object(["name": .string("x"), "annotations": .object(["readOnlyHint": .string("yes")])])),
            .wrongType(path: "annotations.readOnlyHint", expected: "boolean")
        )
        XCTAssertEqual(
            ToolDescriptorError.wrongType(path: "annotations.readOnlyHint", expected: "boolean").description,
            "annotations.readOnlyHint must be a boolean"
        )
    }
}
