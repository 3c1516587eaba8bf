import Testing

@testable import TollgateMCP

@Suite struct JSONScannerTests {
    static let valid = [
        #"{}"#, #" { } "#, #"{"a":1}"#, #"{"jsonrpc":"2.0","id":1,"method":"x","params":{"k":[1,{"é":"\u00e9"}],"n":null}}"#,
        "\n{\"a\" : [ ] , \"b\" :{\"c\":true}}\r\n", #"[1,2]"#, #""text""#, #"42"#,
    ]

    static let invalid = [
        #"{"#, #"{"a""#, #"{"a":"#, #"{"a":1"#, #"{"a":1,"#, #"{"a":1,}"#, #"{"a" 1}"#, #"{a:1}"#, #"{"a":1} x"#, #"{"a":1}}"#,
        #"{"a":[1,}"#, #"{"a":"\x"}"#, #"{"\u12":1}"#, "{\"a\":\"\u{01}\"}", #"{"a":01}"#, "", " ", #"[1,2"#, #"nul"#,
    ]

    @Test(arguments: valid)
    func oneWalkFindsWhatTwoDid(text: String) throws {
        let scanner = JSONScanner(Array(text.utf8))
        let root = try scanner.document()
        let found = try scanner.documentMembers()
        #expect(found.root == root)
        let members = try scanner.members(of: root)
        #expect(found.members?.map(\.key) == members?.map(\.key))
        #expect(found.members?.map(\.value) == members?.map(\.value))
    }

    @Test(arguments: invalid)
    func oneWalkRefusesWhatTwoDidWithTheSameReason(text: String) {
        let scanner = JSONScanner(Array(text.utf8))
        var expected: JSONScanner.Failure?
        do { _ = try scanner.document() } catch { expected = error }
        #expect(expected != nil, "\(text) is not JSON")
        #expect(throws: expected!) { try scanner.documentMembers() }
    }

    @Test func nestingPastTheLimitIsRefusedAsBefore() {
        let deep = Array((#"{"a":"# + String(repeating: "[", count: 10) + String(repeating: "]", count: 10) + "}").utf8)
        let scanner = JSONScanner(deep, maxDepth: 5)
        #expect(throws: JSONScanner.Failure.self) { try scanner.documentMembers() }
        #expect(throws: JSONScanner.Failure.self) { try scanner.document() }
        #expect(throws: Never.self) { try JSONScanner(deep, maxDepth: 11).documentMembers() }
    }
}
