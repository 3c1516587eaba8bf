import Foundation
import XCTest

@testable import TollgateCore

/// One tool as a real MCP server publishes it, with the category and level a reviewer gave it by reading it.
private struct RealTool {
    let source: String
    let json: JSONValue
    let category: RiskCategory
    let level: RiskLevel

    var name: String { json["name"]?.stringValue ?? "?" }
}

/// The table: `Fixtures/real-tools.json`, one row per tool, each with the `Tool` object as its server publishes it
/// in `tools/list` (name, description, the names of its input properties, and its annotations when it has any),
/// where it came from, and the `category/level` a reviewer gave it by reading it, written down before the classifier
/// was run. docs/risk.md lists the source files.
private func loadRealTools() throws -> [RealTool] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/real-tools.json")
    let rows = try XCTUnwrap(try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)).arrayValue)
    return try rows.map { row in
        let expected = try XCTUnwrap(row["expect"]?.stringValue).split(separator: "/").map(String.init)
        XCTAssertEqual(expected.count, 2)
        return RealTool(
            source: try XCTUnwrap(row["source"]?.stringValue),
            json: try XCTUnwrap(row["tool"]),
            category: try XCTUnwrap(RiskCategory(rawValue: expected[0])),
            level: try XCTUnwrap(RiskLevel(rawValue: expected[1]))
        )
    }
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

    func testTableHasAtLeastOneHundredDistinctRealTools() throws {
        let realTools = try loadRealTools()
        XCTAssertGreaterThanOrEqual(realTools.count, 100)
        let keys = realTools.map { "\($0.source)/\($0.name)" }
        XCTAssertEqual(Set(keys).count, keys.count, "a tool is listed twice")
    }

    func testEveryRealToolGetsTheCategoryAndLevelAReviewerGaveIt() throws {
        let realTools = try loadRealTools()
        var mismatches: [String] = []
        for row in realTools {
            let tool = try ToolDescriptor(json: row.json)
            let risk = classifier.classify(tool)
            if risk.category != row.category || risk.level != row.level {
                mismatches.append(
                    "\(row.source) \(row.name): expected \(row.category)/\(row.level), got \(risk.category)/\(risk.level) because \(risk.reasons)"
                )
            }
        }
        XCTAssert(mismatches.isEmpty, "\(mismatches.count) of \(realTools.count) differ:\n" + mismatches.joined(separator: "\n"))
    }

    func testTheTableCoversEveryCategoryButOtherAndEveryLevel() throws {
        let realTools = try loadRealTools()
        XCTAssertEqual(Set(realTools.map(\.category)), Set(RiskCategory.allCases).subtracting([.other]))
        XCTAssertEqual(Set(realTools.map(\.level)), Set(RiskLevel.allCases))
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
