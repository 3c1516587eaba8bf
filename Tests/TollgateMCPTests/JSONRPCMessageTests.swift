import Foundation
import Testing
import TollgateCore

@testable import TollgateMCP

@Suite struct JSONRPCMessageTests {
    func parse(_ text: String) throws(JSONRPCMessage.ParseError) -> JSONRPCMessage {
        try JSONRPCMessage(parsing: Array(text.utf8))
    }

    @Test func readsTheEnvelopeOfEachKind() throws {
        let request = try parse(#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#)
        #expect(request.kind == .request)
        #expect(request.method == "tools/call")
        #expect(request.id?.description == "7")
        #expect(request.paramsString("name") == "echo")
        #expect(request.decodedParams()?["arguments"]?["text"]?.stringValue == "hi")

        let notification = try parse(#"{"method":"notifications/initialized","jsonrpc":"2.0"}"#)
        #expect(notification.kind == .notification)
        #expect(notification.id == nil)

        let response = try parse(#"{"jsonrpc":"2.0","id":"abc","result":{}}"#)
        #expect(response.kind == .response)
        #expect(response.id == JSONRPCID(string: "abc"))

        let error = try parse(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#)
        #expect(error.kind == .error)
    }

    @Test func idsCompareByValueAndKeepTheirBytes() throws {
        let a = try parse(#"{"jsonrpc":"2.0","id":0,"result":{}}"#).id
        let b = try parse(#"{"jsonrpc":"2.0","id":-0,"result":{}}"#).id
        let c = try parse(#"{"jsonrpc":"2.0","id":"0","result":{}}"#).id
        #expect(a == b, "-0 is the integer 0")
        #expect(a != c, "a string id is not the number")
        #expect(String(decoding: b!.raw, as: UTF8.self) == "-0", "echoed as written")
        let escaped = try parse(#"{"jsonrpc":"2.0","id":"a\u0062","result":{}}"#).id
        #expect(escaped == JSONRPCID(string: "ab"))
    }

    /// Ids a peer would not echo back exactly: refused at once (`-32600`, no id to answer with), requests and
    /// responses alike, whichever side sent them.
    @Test(arguments: [
        "1.5", "1e2", "1E2", "1e400", "1.0", "-1.5", "0e0", "9007199254740992", "-9007199254740992", "12345678901234567",
        "100000000000000000000", "true", "false", "{}", "[]", #"{"x":1}"#, "[1]",
        "\"" + String(repeating: "a", count: 255) + "\"", "\"" + String(repeating: "x", count: 65536) + "\"",
    ])
    func refusesAnIDThePeersCannotEchoBackExactly(id: String) {
        for message in [
            #"{"jsonrpc":"2.0","id":"# + id + #","method":"tools/call","params":{"name":"echo"}}"#,
            #"{"jsonrpc":"2.0","id":"# + id + #","result":{}}"#,
            #"{"jsonrpc":"2.0","id":"# + id + #","error":{"code":1,"message":"x"}}"#,
        ] {
            do {
                _ = try parse(message)
                Issue.record("accepted the id \(id.prefix(40))")
            } catch {
                #expect(error.code == -32600, "\(id.prefix(40)): \(error.message)")
                #expect(error.id == nil, "the error's id is null")
                #expect(error.message.contains("`id`"), "says what is wrong: \(error.message)")
                #expect(error.message.count < 400, "and does not repeat a long id")
            }
        }
    }

    @Test(arguments: [
        ("9007199254740991", "n:9007199254740991"), ("-9007199254740991", "n:-9007199254740991"), ("0", "n:0"), ("-0", "n:0"),
        ("42", "n:42"), ("\"" + String(repeating: "a", count: 254) + "\"", "s:" + String(repeating: "a", count: 254)),
        (#""\u00e9""#, "s:é"),
    ])
    func acceptsIntegersAndStringsUpToTheBounds(id: String, key: String) throws {
        let message = try parse(#"{"jsonrpc":"2.0","id":"# + id + #","method":"ping"}"#)
        #expect(message.id?.key == key)
        #expect(message.id.map { String(decoding: $0.raw, as: UTF8.self) } == id)
    }

    @Test func aProgressTokenThatIsNoIDIsNotReadAsOne() throws {
        let call = try parse(#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","_meta":{"progressToken":1.5}}}"#)
        #expect(call.progressToken == nil)
        #expect(JSONRPCID(raw: Array("7".utf8)) == JSONRPCID(raw: Array("7".utf8)))
        #expect(JSONRPCID(raw: Array("7.0".utf8)) == nil)
    }

    @Test func readsTheProgressTokenAndReferencedIDs() throws {
        let call = try parse(#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","_meta":{"progressToken":"tok-1"}}}"#)
        #expect(call.progressToken == JSONRPCID(string: "tok-1"))
        let cancel = try parse(#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"bored"}}"#)
        #expect(cancel.paramsID("requestId") == call.id)
    }

    @Test(arguments: [
        ("{", -32700),
        ("", -32700),
        ("   ", -32700),
        (#"{"jsonrpc":"2.0","id":1,"method":"x"} trailing"#, -32700),
        (#"{"jsonrpc":"2.0","id":1,"method":"x",}"#, -32700),
        (#"{"jsonrpc":"2.0","id":01,"method":"x"}"#, -32700),
        (#"{"jsonrpc":"2.0","id":1,"method":"\u12"}"#, -32700),
        (#"{"jsonrpc":"2.0","id":1,"method":"\ud800"}"#, -32700),
        ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\u{1}b\"}", -32700),
        (#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#, -32600),
        (#"42"#, -32600),
        (#"{"id":1,"method":"x"}"#, -32600),
        (#"{"jsonrpc":"2.0","id":true,"method":"x"}"#, -32600),
        (#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#, -32600),
        (#"{"jsonrpc":"2.0","id":1,"method":""}"#, -32600),
        (#"{"jsonrpc":"2.0","id":1,"method":7}"#, -32600),
        (#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#, -32600),
        (#"{"jsonrpc":"2.0","id":1,"method":"x","method":"y"}"#, -32600),
        (#"{"jsonrpc":"2.0","result":{}}"#, -32600),
        (#"{"jsonrpc":"2.0","id":1}"#, -32600),
    ])
    func refusesWhatIsNotOneValidMessage(text: String, code: Int) {
        #expect(throws: JSONRPCMessage.ParseError.self) { try parse(text) }
        do {
            _ = try parse(text)
        } catch {
            #expect(error.code == code, "\(text): \(error.message)")
        }
    }

    @Test func refusesNestingDeeperThanTheLimitWithoutCrashing() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONRPCMessage.ParseError.self) { try parse(#"{"jsonrpc":"2.0","id":1,"method":"x","params":"# + deep + "}") }
    }

    @Test func invalidUTF8IsAParseError() {
        var bytes = Array(#"{"jsonrpc":"2.0","id":1,"method":"x"#.utf8)
        bytes += [0xFF, 0xFE]
        bytes += Array(#""}"#.utf8)
        #expect(throws: JSONRPCMessage.ParseError.self) { try JSONRPCMessage(parsing: bytes) }
    }

    /// Strings the parser only skips (nested keys and values) are checked as strictly as those it reads.
    @Test(
        arguments: [
            [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], [0x01], Array(#"\x"#.utf8),
            Array(#"\ud800"#.utf8), Array(#"\u12"#.utf8),
        ] as [[UInt8]])
    func refusesABadStringAnywhereInTheMessage(bad: [UInt8]) {
        let prefix = Array(#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":[1,{"#.utf8)
        let asValue = prefix + Array(#""k":"ok"#.utf8) + bad + Array(#""}]}}"#.utf8)
        let asKey = prefix + Array(#""k"#.utf8) + bad + Array(#"":1}]}}"#.utf8)
        #expect(throws: JSONRPCMessage.ParseError.self) { try JSONRPCMessage(parsing: asValue) }
        #expect(throws: JSONRPCMessage.ParseError.self) { try JSONRPCMessage(parsing: asKey) }
        let unterminated = prefix + Array(#""k":"ok"#.utf8)
        #expect(throws: JSONRPCMessage.ParseError.self) { try JSONRPCMessage(parsing: unterminated) }
    }

    @Test func acceptsAndReadsUnicodeAndEscapesAnywhereInTheMessage() throws {
        let text = #"{"jsonrpc":"2.0","id":"caf\u00e9 ☕","method":"tools/\u0063all","params":{"név":["😀","\ud83d\ude00\n\"","tab\t"]}}"#
        let message = try parse(text)
        #expect(message.method == "tools/call")
        #expect(message.id == (try parse(#"{"jsonrpc":"2.0","id":"café ☕","method":"x"}"#).id))
        let params = try JSONValue(parsing: String(decoding: message.bytes, as: UTF8.self))["params"]
        #expect(params?["név"]?.arrayValue?.map(\.stringValue) == ["😀", "😀\n\"", "tab\t"])
    }

    @Test func singleLineTurnsWhitespaceLineBreaksIntoSpacesOnly() throws {
        let message = try parse("{\n  \"jsonrpc\": \"2.0\",\r\n  \"id\": 1, \"method\": \"x\", \"params\": {\"text\": \"a\\nb\"}\n}")
        let line = String(decoding: message.singleLine, as: UTF8.self)
        #expect(!line.contains("\n") && !line.contains("\r"))
        #expect(line.contains(#""a\nb""#), "an escaped newline inside a string is untouched")
        #expect(try JSONRPCMessage(parsing: message.singleLine).method == "x")
    }

    @Test func writesErrorsAndToolErrorsThatParseBack() throws {
        let id = try parse(#"{"jsonrpc":"2.0","id":"q\"1","method":"x"}"#).id!
        let error = try JSONRPCMessage(parsing: JSONRPCWriter.error(id: id, code: -32602, message: "Unknown tool: \"x\"\n"))
        #expect(error.kind == .error)
        #expect(error.id == id)
        let refusal = try JSONRPCMessage(
            parsing: JSONRPCWriter.toolError(
                id: id, text: "denied\u{2028}because", meta: ["io.tollgate/decision": .object(["rule": .string("default")])]))
        let result = try JSONValue(parsing: String(decoding: refusal.resultBytes!, as: UTF8.self))
        #expect(result["isError"]?.boolValue == true)
        #expect(result["content"]?.arrayValue?.first?["text"]?.stringValue == "denied\u{2028}because")
        #expect(result["_meta"]?["io.tollgate/decision"]?["rule"]?.stringValue == "default")
    }
}

@Suite struct ToolListResponseTests {
    let original = """
        {"jsonrpc":"2.0","id":2,"result":{"tools":[ {"name":"echo","inputSchema":{"type":"object"},"x-unknown":1.50},
         {"name":"delete_file","description":"Deletes","annotations":{"destructiveHint":true}} ,{"inputSchema":{},"name":"transfer"}],"nextCursor":"c2"}}
        """

    @Test func cutsHiddenToolsAndKeepsEveryOtherByte() throws {
        let message = try JSONRPCMessage(parsing: Array(original.utf8))
        let list = try #require(ToolListResponse(message))
        #expect(list.tools.map(\.name) == ["echo", "delete_file", "transfer"])
        #expect(list.tools[1].annotations?.destructiveHint == true)
        #expect(list.nextCursor == "c2")
        let filtered = String(decoding: list.bytes { $0 == "delete_file" }, as: UTF8.self)
        #expect(filtered.contains(#"{"name":"echo","inputSchema":{"type":"object"},"x-unknown":1.50}"#), "numbers and order kept: \(filtered)")
        #expect(!filtered.contains("delete_file"))
        #expect(filtered.contains(#"{"inputSchema":{},"name":"transfer"}"#))
        #expect(filtered.hasSuffix(#"],"nextCursor":"c2"}}"#))
        #expect(try JSONValue(parsing: filtered)["result"]?["tools"]?.arrayValue?.count == 2)
    }

    @Test func returnsTheOriginalBytesWhenNothingIsHidden() throws {
        let message = try JSONRPCMessage(parsing: Array(original.utf8))
        let list = try #require(ToolListResponse(message))
        #expect(list.bytes { _ in false } == Array(original.utf8))
    }

    @Test func hidingEveryToolLeavesAnEmptyList() throws {
        let message = try JSONRPCMessage(parsing: Array(original.utf8))
        let filtered = try #require(ToolListResponse(message)).bytes { _ in true }
        #expect(try JSONValue(parsing: String(decoding: filtered, as: UTF8.self))["result"]?["tools"]?.arrayValue == [])
    }

    @Test func isNilForAnErrorOrAResultWithoutTools() throws {
        #expect(ToolListResponse(try JSONRPCMessage(parsing: Array(#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#.utf8))) == nil)
        #expect(ToolListResponse(try JSONRPCMessage(parsing: Array(#"{"jsonrpc":"2.0","id":1,"result":{"tools":3}}"#.utf8))) == nil)
    }
}

@Suite struct SSEParserTests {
    @Test func dispatchesEventsOnBlankLinesWhateverTheLineEndings() {
        var parser = SSEParser()
        let events = parser.feed(
            Array("event: endpoint\r\ndata: /messages?s=1\r\n\r\n: comment\n\ndata: {\"a\":1}\rdata: 2\r\rid: 9\ndata:x\n\n".utf8))
        #expect(events.count == 3)
        #expect(events[0] == SSEParser.Event(name: "endpoint", data: Array("/messages?s=1".utf8), id: nil))
        #expect(events[1].name == "message")
        #expect(String(decoding: events[1].data, as: UTF8.self) == "{\"a\":1}\n2")
        #expect(events[2].id == "9")
        #expect(String(decoding: events[2].data, as: UTF8.self) == "x")
    }

    @Test func assemblesEventsSplitAcrossChunksAtAnyByte() {
        let text = Array("data: {\"jsonrpc\":\"2.0\"}\r\n\r\ndata: second\n\n".utf8)
        for split in 0...text.count {
            var parser = SSEParser()
            let events = parser.feed(text[..<split]) + parser.feed(text[split...])
            #expect(events.map { String(decoding: $0.data, as: UTF8.self) } == ["{\"jsonrpc\":\"2.0\"}", "second"], "split at \(split)")
        }
    }

    @Test func dropsAnOversizedEventAndCarriesOn() {
        var parser = SSEParser(maxEventBytes: 16)
        let events = parser.feed(Array(("data: " + String(repeating: "z", count: 100) + "\n\ndata: ok\n\n").utf8))
        #expect(events.map { String(decoding: $0.data, as: UTF8.self) } == ["ok"])
        #expect(parser.droppedOversized == 1)
    }
}
