import Foundation
import Testing
import TollgateCore

@testable import TollgateMCP

/// One reading of a message: the gateway decides on exactly the bytes it forwards. A repeated key anywhere is refused
/// (peers disagree on which value counts), a request method never travels as a notification, and only listed methods
/// pass. The property test compares the gateway's reading of generated messages with Python's `json.loads`.
@Suite struct MessageIntegrityTests {
    static func parse(_ text: String) -> Result<JSONRPCMessage, JSONRPCMessage.ParseError> {
        do { return .success(try JSONRPCMessage(parsing: Array(text.utf8))) } catch { return .failure(error) }
    }

    static let repeated = [
        // The issue's reproduction: decided as `echo`, run upstream as `delete_repo`.
        #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","name":"delete_repo","arguments":{"repo":"victim"}}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"transfer","arguments":{"amount":10},"arguments":{"amount":900000}}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"transfer","arguments":{"amount":10,"amount":900000}}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":1,"progressToken":2}}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"a":[{"b":{"c":1,"c":2}}]}}}"#,
        // The same key written two ways is the same key.
        #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","n\u0061me":"delete_repo"}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"\ud83d\ude00":1,"😀":2}}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"tools/call","method":"tools/list"}"#,
        #"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","name":"b"}]}}"#,
    ]

    @Test(arguments: repeated)
    func aRepeatedKeyAtAnyDepthIsRefusedAsAnInvalidRequest(text: String) throws {
        guard case .failure(let error) = Self.parse(text) else {
            Issue.record("accepted: \(text)")
            return
        }
        #expect(error.code == -32600, "\(error)")
        #expect(error.message.contains("appears twice"), "\(error)")
    }

    @Test func aRepeatedKeyIsFoundInObjectsOfManyMembers() throws {
        let members = (0..<40).map { #""k\#($0)":\#($0)"# }
        let unique = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{\#(members.joined(separator: ","))}}}"#
        #expect(throws: Never.self) { try JSONRPCMessage(parsing: Array(unique.utf8)) }
        let twice = unique.replacingOccurrences(of: #""k39":39"#, with: #""k3":39"#)
        #expect(throws: JSONRPCMessage.ParseError.self) { try JSONRPCMessage(parsing: Array(twice.utf8)) }
    }

    @Test func keysThatOnlyLookAlikeAreDistinct() throws {
        let text = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1,"A":2,"a ":3,"\u0061b":4}}}"#
        let message = try JSONRPCMessage(parsing: Array(text.utf8))
        guard case .success(let call) = ToolCallParams.read(message, id: message.id!) else {
            Issue.record("refused")
            return
        }
        #expect(call.arguments == ["a": 1, "A": 2, "a ": 3, "ab": 4])
    }

    // MARK: - Methods

    static func refusal(_ text: String) throws -> JSONValue? {
        try AgentMethods.refusal(of: JSONRPCMessage(parsing: Array(text.utf8))).map { try JSONValue(parsing: String(decoding: $0, as: UTF8.self)) }
    }

    @Test func aRequestMethodSentAsANotificationIsRefused() throws {
        for method in ["tools/call", "resources/read", "initialize", "anything/else"] {
            let refused = try Self.refusal(#"{"jsonrpc":"2.0","method":"\#(method)","params":{"name":"delete_file"}}"#)
            #expect(refused?["error"]?["code"] == -32600, "\(method): \(String(describing: refused))")
            #expect(refused?["id"] == .null)
        }
    }

    @Test func aMethodNobodyListedIsRefusedWithItsId() throws {
        for method in ["tools/delete", "Tools/Call", "tools/call ", "x-vendor/run", "sampling/createMessage"] {
            let refused = try Self.refusal(#"{"jsonrpc":"2.0","id":"r1","method":"\#(method)"}"#)
            #expect(refused?["error"]?["code"] == -32601, "\(method)")
            #expect(refused?["id"] == "r1")
        }
        #expect(try Self.refusal(#"{"jsonrpc":"2.0","method":"notifications/made_up"}"#)?["error"]?["code"] == -32601)
    }

    @Test func everyListedMethodAndEveryAnswerPasses() throws {
        for method in AgentMethods.passedThrough.union(AgentMethods.governed) {
            #expect(try Self.refusal(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)"}"#) == nil, "\(method)")
        }
        for method in AgentMethods.notifications {
            #expect(try Self.refusal(#"{"jsonrpc":"2.0","method":"\#(method)"}"#) == nil, "\(method)")
        }
        #expect(try Self.refusal(#"{"jsonrpc":"2.0","id":1,"result":{}}"#) == nil)
        #expect(try Self.refusal(#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#) == nil)
        #expect(AgentMethods.reads.isSubset(of: AgentMethods.passedThrough))
    }

    // MARK: - A call's parameters

    @Test func aCallsParametersMustBeReadableOneWay() throws {
        let refused = [
            #"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["echo"]}"#,
            #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
            #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}"#,
            #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":["x"]}}"#,
            #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":"x"}}"#,
        ]
        for text in refused {
            let message = try JSONRPCMessage(parsing: Array(text.utf8))
            guard case .failure(let refusal) = ToolCallParams.read(message, id: message.id!) else {
                Issue.record("accepted: \(text)")
                continue
            }
            #expect(String(decoding: refusal.bytes, as: UTF8.self).contains("-32602"), "\(text)")
        }
        let null = try JSONRPCMessage(parsing: Array(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e","arguments":null}}"#.utf8))
        guard case .success(let call) = ToolCallParams.read(null, id: null.id!) else {
            Issue.record("null arguments refused")
            return
        }
        #expect(call.arguments == .object([:]))
    }

    // MARK: - Property: the gateway's reading is Python's, or the message is refused

    /// Writes random `tools/call` messages whose objects often repeat a key (at random depths, sometimes spelled with
    /// escapes), including `name`, `arguments` and `_meta.progressToken`.
    struct Generator {
        var state: UInt64

        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }

        mutating func key() -> String {
            let key = ["a", "b", "amount", "to", "name"][next(5)]
            // Sometimes the same key with an escape: still the same key.
            return next(4) == 0 ? "\"\\u00\(String(format: "%02x", key.utf8.first!))\(key.dropFirst())\"" : "\"\(key)\""
        }

        mutating func value(depth: Int) -> String {
            switch next(depth > 3 ? 4 : 6) {
            case 0: return String(next(2_000_001) - 1_000_000)
            case 1: return ["\"plain\"", "\"tab\\tand\\nnewline\"", "\"\\u00e9t\\u00e9\"", "\"\\ud83d\\ude00\"", "\"é\""][next(5)]
            case 2: return ["true", "false", "null"][next(3)]
            case 3: return "\(next(1000)).\(next(100))"
            case 4: return "[" + (0..<next(3)).map { _ in value(depth: depth + 1) }.joined(separator: ",") + "]"
            default: return object(depth: depth + 1)
            }
        }

        mutating func object(depth: Int) -> String {
            "{" + (0..<next(4)).map { _ in key() + ":" + value(depth: depth) }.joined(separator: ",") + "}"
        }

        mutating func message(index: Int) -> String {
            var members = [#""name":"echo""#]
            if next(5) == 0 { members.append(#""name":"delete_repo""#) }
            if next(6) != 0 { members.append(#""arguments":"# + object(depth: 1)) }
            if next(8) == 0 { members.append(#""arguments":"# + object(depth: 1)) }
            if next(4) == 0 { members.append(#""_meta":{"progressToken":1"# + (next(3) == 0 ? #","progressToken":2}"# : "}")) }
            for _ in 0..<members.count {
                let i = next(members.count)
                let j = next(members.count)
                members.swapAt(i, j)
            }
            return #"{"jsonrpc":"2.0","id":\#(index),"method":"tools/call","params":{\#(members.joined(separator: ","))}}"#
        }
    }

    static let python = #"""
        import json, sys
        for line in sys.stdin:
            repeated = [False]
            def pairs(items):
                keys = [k for k, _ in items]
                if len(keys) != len(set(keys)):
                    repeated[0] = True
                return dict(items)
            message = json.loads(line, object_pairs_hook=pairs)
            params = message.get("params", {})
            arguments = params.get("arguments")
            print(json.dumps({"repeated": repeated[0], "name": params.get("name"), "arguments": {} if arguments is None else arguments}))
        """#

    /// Runs blocking `work` on a thread of its own and waits for it without holding one of the cooperative pool's.
    static func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: work()) }.start()
        }
    }

    @Test func theGatewayRefusesOrReadsExactlyWhatPythonReads() async throws {
        var generator = Generator(state: 20_261_207)
        let messages = (0..<600).map { generator.message(index: $0) }
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", Self.python]
        let input = Pipe()
        let output = Pipe()
        python.standardInput = input
        python.standardOutput = output
        try python.run()
        // The pipe's reads and writes and the wait for Python block: each on a thread of its own, never on the two
        // threads of Swift's cooperative pool, where they would stall every other test of this process meanwhile.
        let reading = Task { await Self.onOwnThread { output.fileHandleForReading.readDataToEndOfFile() } }
        let writer = input.fileHandleForWriting
        let text = Data((messages.joined(separator: "\n") + "\n").utf8)
        await Self.onOwnThread {
            writer.write(text)
            try? writer.close()
            python.waitUntilExit()
        }
        #expect(python.terminationStatus == 0)
        let lines = String(decoding: await reading.value, as: UTF8.self).split(separator: "\n")
        try #require(lines.count == messages.count)

        var refusedCount = 0
        for (text, line) in zip(messages, lines) {
            let python = try JSONValue(parsing: String(line))
            let read: Result<ToolCallParams, RefusedCall>
            switch Self.parse(text) {
            case .failure:
                refusedCount += 1
                #expect(python["repeated"] == true, "refused a message without a repeated key: \(text)")
                continue
            case .success(let message): read = ToolCallParams.read(message, id: message.id!)
            }
            #expect(python["repeated"] == false, "accepted a message with a repeated key: \(text)")
            guard case .success(let call) = read else {
                Issue.record("parameters refused: \(text)")
                continue
            }
            #expect(JSONValue.string(call.name) == python["name"], "\(text)")
            #expect(call.arguments == python["arguments"], "\(text)")
        }
        // Both kinds were generated in numbers.
        #expect(refusedCount > 100 && refusedCount < 500, "\(refusedCount) of \(messages.count) refused")
    }
}
