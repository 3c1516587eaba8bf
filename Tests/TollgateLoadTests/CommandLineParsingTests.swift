import NIOCore
import Testing

@testable import tollgate_load

struct CommandLineParsingTests {
    @Test func targetURLs() throws {
        let gateway = try TargetURL(parsing: "http://127.0.0.1:8420/mcp/time")
        #expect(gateway.host == "127.0.0.1" && gateway.port == 8420 && gateway.path == "/mcp/time")
        #expect(gateway.authority == "127.0.0.1:8420")
        let ipv6 = try TargetURL(parsing: "http://[::1]:9000")
        #expect(ipv6.host == "::1" && ipv6.port == 9000 && ipv6.path == "/")
        #expect(ipv6.description == "http://[::1]:9000/")
        let defaultPort = try TargetURL(parsing: "http://localhost/mcp?x=1#frag")
        #expect(defaultPort.port == 80 && defaultPort.path == "/mcp?x=1")
        for bad in ["https://127.0.0.1/mcp", "127.0.0.1:80/mcp", "http://:80/", "http://h:0/", "http://h:99999/", "http://h:x/", "http://[::1/"] {
            #expect(throws: LoadError.self, "\(bad)") { try TargetURL(parsing: bad) }
        }
    }

    @Test func durations() {
        #expect(TimeAmount(parsing: "10s") == .seconds(10))
        #expect(TimeAmount(parsing: "10") == .seconds(10))
        #expect(TimeAmount(parsing: "500ms") == .milliseconds(500))
        #expect(TimeAmount(parsing: "1.5m") == .seconds(90))
        #expect(TimeAmount(parsing: "250us") == .microseconds(250))
        #expect(TimeAmount(parsing: "0") == .zero)
        #expect(TimeAmount(parsing: "5x") == nil)
        #expect(TimeAmount(parsing: "-1s") == nil)
        #expect(TimeAmount(parsing: "s") == nil)
        #expect(TimeAmount.milliseconds(1500).shortDescription == "1.500 s")
        #expect(TimeAmount.milliseconds(250).shortDescription == "250 ms")
    }

    @Test func headers() throws {
        let header = try TollgateLoad.parseHeader("Authorization:  Bearer abc ")
        #expect(header.name == "Authorization" && header.value == "Bearer abc")
        for bad in ["NoColon", ": value", "Bad Name: x", "X: a\r\nInjected: y"] {
            #expect(throws: (any Error).self, "\(bad)") { try TollgateLoad.parseHeader(bad) }
        }
    }

    @Test func theCommandRejectsContradictoryOptions() {
        let base = ["--url", "http://127.0.0.1:1/mcp", "--tool", "t"]
        #expect(throws: (any Error).self) { try TollgateLoad.parse(base + ["--rate", "5", "--saturate"]) }
        #expect(throws: (any Error).self) { try TollgateLoad.parse(base + ["--arguments", "[1]"]) }
        #expect(throws: (any Error).self) { try TollgateLoad.parse(base + ["--connections", "8", "--max-connections", "4"]) }
        #expect(throws: (any Error).self) { try TollgateLoad.parse(base + ["--duration", "0s"]) }
        #expect(throws: Never.self) { try TollgateLoad.parse(base + ["--saturate", "--duration", "1s", "--format", "json"]) }
    }
}
