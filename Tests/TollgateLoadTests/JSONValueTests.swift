import Testing

@testable import tollgate_load

struct JSONValueTests {
    private func parse(_ text: String) throws -> JSONValue {
        try JSONValue(parsing: Array(text.utf8))
    }

    @Test func readsAJSONRPCResponse() throws {
        let response = try parse(#" {"jsonrpc":"2.0","id":42,"result":{"content":[],"isError":true}} "#)
        #expect(response["id"]?.integer == 42)
        #expect(response["result"]?["isError"]?.bool == true)
        #expect(response["error"] == nil)
    }

    @Test func numbers() throws {
        #expect(try parse("-0").integer == 0)
        #expect(try parse("12345678901234").integer == 12_345_678_901_234)
        #expect(try parse("1.0").integer == 1)
        #expect(try parse("1.5").integer == nil)
        #expect(try parse("2e3").integer == 2000)
        for bad in ["01", "1.", ".5", "-", "1e", "+1"] {
            #expect(throws: JSONParseError.self, "\(bad)") { try parse(bad) }
        }
    }

    @Test func stringEscapesAndSurrogatePairs() throws {
        #expect(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#).string == "a\"b\\c/d\n\té😀")
        #expect(try parse(#""plain é""#).string == "plain é")
        for bad in [#""\ud83d""#, #""\ude00""#, #""\x""#, "\"a\nb\"", #""open"#] {
            #expect(throws: JSONParseError.self, "\(bad)") { try parse(bad) }
        }
    }

    @Test func rejectsWhatIsNotOneJSONValue() {
        for bad in ["", "{", "{}}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "nul", "truth", "{} {}", "{'a':1}"] {
            #expect(throws: JSONParseError.self, "\(bad)") { try parse(bad) }
        }
    }

    @Test func refusesNestingDeeperThan512() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONParseError.self) { try parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try parse(fine) }
    }

    @Test func writesBackWhatItReadsInOrder() throws {
        let text = #"{"b":[1,2.5,true,false,null],"a":{"s":"q\"\\\n\u0001é"}}"#
        let value = try parse(text)
        #expect(value.serialized == #"{"b":[1,2.5,true,false,null],"a":{"s":"q\"\\\n\u0001é"}}"#)
        #expect(try parse(value.serialized).serialized == value.serialized)
    }

    @Test func repeatedKeysReadTheLastOne() throws {
        #expect(try parse(#"{"id":1,"id":2}"#)["id"]?.integer == 2)
    }
}
