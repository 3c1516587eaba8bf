import TollgateServer
import XCTest

final class ListenAddressTests: XCTestCase {
    func testAddressesParse() throws {
        XCTAssertEqual(try ListenAddress("127.0.0.1:8420"), try ListenAddress("127.0.0.1:8420"))
        let v4 = try ListenAddress("127.0.0.1:8420")
        XCTAssertEqual([v4.host, String(v4.port)], ["127.0.0.1", "8420"])
        let v6 = try ListenAddress("[::1]:9000")
        XCTAssertEqual([v6.host, String(v6.port)], ["::1", "9000"])
        let any = try ListenAddress(":80")
        XCTAssertEqual([any.host, String(any.port)], ["0.0.0.0", "80"])
        XCTAssertEqual(try ListenAddress("localhost:1").host, "localhost")
    }

    func testMalformedAndHostileAddressesAreRefusedWithTheRule() {
        let bad = [
            "", "8420", "host:", "host:0", "host:65536", "host:-1", "host:80x", "a b:80", "host;rm -rf /:80",
            "http://host:80", String(repeating: "a", count: 10_000) + ":80", "host:\u{0}80", "ho\u{0}st:80",
        ]
        for text in bad {
            XCTAssertThrowsError(try ListenAddress(text), "\(text.prefix(40))") { error in
                XCTAssertTrue("\(error)".contains("host:port"), "\(error)")
                XCTAssertLessThan("\(error)".count, 300, "the message quotes at most a prefix of the input")
            }
        }
    }
}
