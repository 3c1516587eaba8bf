import Foundation
import TollgateTestSupport
import XCTest

/// `tollgate policy ...` as an operator runs it on files.
final class PolicyCommandLineTests: XCTestCase {
    let tollgate = RunningProgram.tollgateBinary
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-policy-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let seed = """
        {"version": "1", "default": "deny",
         "tools": {"BinancePortfolioMarginRenewListenKey":
           {"limits": [{"counter": "binanceportfoliomarginrenewlistenkey_rate", "window": "minute", "max": 60, "scope": "grant"}]}}}
        """

    func testCheckListsEveryErrorWithItsPlaceAndExitsNonZero() throws {
        let bad = try write(
            "bad.yaml",
            """
            version: "1"
            default: maybe
            tools:
              transfer:
                limts:
                  - {counter: c, window: minute, max: 5}
              delete_*:
                action: deny
                reason: 7
            """)
        let good = try write("seed.json", Self.seed)
        let result = try RunningProgram.run(tollgate, ["policy", "check", good, bad])
        XCTAssertNotEqual(result.status, 0)
        let output = result.stdout + result.stderr
        XCTAssertTrue(output.contains("\(bad):2:10: default: `maybe` is not allowed here"), output)
        XCTAssertTrue(output.contains("\(bad):5:5: tools.transfer.limts: unknown key `limts`"), output)
        XCTAssertTrue(output.contains("did you mean `limits`?"), output)
        XCTAssertTrue(output.contains("\(bad):9:13: tools.delete_*.reason: expected a string"), output)
        XCTAssertTrue(output.contains("\(good): ok (sha256:"), "the valid file is reported valid: \(output)")

        let json = try RunningProgram.run(tollgate, ["policy", "check", "--format", "json", bad])
        XCTAssertNotEqual(json.status, 0)
        let reports = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        let errors = reports?.first?["errors"] as? [[String: Any]] ?? []
        XCTAssertEqual(errors.map { $0["path"] as? String }, ["default", "tools.transfer.limts", "tools.delete_*.reason"])
        XCTAssertEqual(errors[1]["suggestion"] as? String, "limits")
    }

    func testCheckRefusesHostileFilesWithAClearError() throws {
        let huge = try write("huge.yaml", "version: '1'\ndefault: deny\n# " + String(repeating: "x", count: 2 << 20) + "\n")
        let nested = try write("nested.json", String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000))
        let bomb = try write(
            "bomb.yaml",
            (["a: &a [x, x, x, x, x, x, x, x, x, x]"]
                + (1...9).map {
                    "\(Character(UnicodeScalar(97 + $0)!)): &\(Character(UnicodeScalar(97 + $0)!)) ["
                        + String(repeating: "*\(Character(UnicodeScalar(96 + $0)!)), ", count: 10) + "]"
                }).joined(separator: "\n"))
        for path in [huge, nested, bomb, folder.appendingPathComponent("missing.yaml").path] {
            let result = try RunningProgram.run(tollgate, ["policy", "check", path], timeout: .seconds(20))
            XCTAssertNotEqual(result.status, 0, path)
            XCTAssertFalse((result.stdout + result.stderr).isEmpty, "says why: \(path)")
            XCTAssertLessThan(result.status, 128, "an error, not a crash: \(path)")
        }
    }

    func testExplainShowsTheDecisionAndTheRuleForTheSeedPolicy() throws {
        let seed = try write("seed.json", Self.seed)
        let allowed = try RunningProgram.run(tollgate, ["policy", "explain", seed, "--tool", "BinancePortfolioMarginRenewListenKey"])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
        XCTAssertTrue(allowed.stdout.contains("decision: allow"), allowed.stdout)
        XCTAssertTrue(allowed.stdout.contains("at most 60 per minute per grant"), allowed.stdout)

        let capped = try RunningProgram.run(
            tollgate,
            ["policy", "explain", seed, "--tool", "BinancePortfolioMarginRenewListenKey", "--count", "binanceportfoliomarginrenewlistenkey_rate=60"])
        XCTAssertTrue(capped.stdout.contains("decision: limited"), capped.stdout + capped.stderr)

        let other = try RunningProgram.run(tollgate, ["policy", "explain", seed, "--tool", "SomethingElse"])
        XCTAssertTrue(other.stdout.contains("decision: deny"), other.stdout)
        XCTAssertTrue(other.stdout.contains("rule: default"), other.stdout)

        let badArgs = try RunningProgram.run(tollgate, ["policy", "explain", seed, "--tool", "x", "--args", "{not json"])
        XCTAssertNotEqual(badArgs.status, 0)
        XCTAssertTrue(badArgs.stderr.contains("--args"), badArgs.stderr)
    }

    func testFmtPrintsACanonicalFormThatLoadsToTheSamePolicy() throws {
        let seed = try write("seed.json", Self.seed)
        let formatted = try RunningProgram.run(tollgate, ["policy", "fmt", seed])
        XCTAssertEqual(formatted.status, 0, formatted.stderr)
        let again = try write("again.yaml", formatted.stdout)
        let hashes = try [seed, again].map { path -> String in
            let result = try RunningProgram.run(tollgate, ["policy", "check", path])
            XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
            return String(result.stdout.split(separator: "(").last ?? "")
        }
        XCTAssertEqual(hashes[0], hashes[1], "same content hash after formatting")
        let twice = try RunningProgram.run(tollgate, ["policy", "fmt", again])
        XCTAssertEqual(twice.stdout, formatted.stdout, "formatting is idempotent")
    }

    func testImportConvertsAnInterceptPolicy() throws {
        let intercept = try write(
            "intercept.yaml",
            """
            version: "1"
            description: "GitHub"
            default: allow
            hide:
              - delete_repository
            tools:
              create_issue:
                rules:
                  - name: "hourly cap"
                    rate_limit: 5/hour
                    on_deny: "Too many issues"
            """)
        let out = folder.appendingPathComponent("converted.yaml").path
        let result = try RunningProgram.run(tollgate, ["policy", "import", intercept, "-o", out])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let check = try RunningProgram.run(tollgate, ["policy", "check", out])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        let capped = try RunningProgram.run(tollgate, ["policy", "explain", out, "--tool", "delete_repository"])
        XCTAssertTrue(capped.stdout.contains("hidden") || capped.stdout.contains("hide"), capped.stdout)
    }
}
