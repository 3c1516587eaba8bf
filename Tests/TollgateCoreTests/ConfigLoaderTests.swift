import Foundation
import Testing

@testable import TollgateCore

@Suite("Gateway configuration")
struct ConfigLoaderTests {
    static let environment = ["HOME": "/home/tollgate", "STRIPE_TOKEN": "sk_test_123"]

    static let expected = GatewayConfig(
        listen: "[::1]:9090",
        database: "postgresql://tollgate@db.internal:5432/tollgate?sslmode=require",
        dataDirectory: "/etc/tollgate/data/cluster",
        allowedOrigins: ["http://localhost:3000", "https://console.example.com"],
        logging: LoggingSettings(level: "debug", format: .json),
        limits: GatewayLimits(maxBodyBytes: 1_048_576, maxHeldCalls: 50, maxSessions: 200, upstreamTimeout: .seconds(120)),
        storeArguments: .keys,
        servers: [
            ServerConfig(
                name: "time",
                upstream: .stdio(
                    StdioUpstream(
                        command: "mcp-server-time", arguments: ["--local-timezone", "UTC"],
                        environment: ["TZ": "UTC", "HOME": "/home/tollgate"], directory: "/tmp")),
                policyPath: "/etc/tollgate/policies/time.yaml",
                storeArguments: .hash
            ),
            ServerConfig(
                name: "stripe",
                upstream: .http(
                    HTTPUpstream(
                        url: "https://example.com/mcp", transport: .streamableHTTP,
                        headers: [
                            HTTPHeader(name: "Authorization", value: "Bearer sk_test_123"), HTTPHeader(name: "X-Team", value: "payments"),
                        ])),
                policyPath: "/etc/shared/stripe.yaml",
                storeArguments: .keys
            ),
            ServerConfig(
                name: "legacy",
                upstream: .http(HTTPUpstream(url: "http://127.0.0.1:7000/sse", transport: .sse)),
                policyPath: "/srv/policies/legacy.json",
                storeArguments: .keys
            ),
        ],
        agents: [
            AgentConfig(id: "ci-bot", grant: "ci", keyHash: "sha256:3cfb008d7de3a84fb54fb17b344cd0d1d38c136b3c2c9be8dc1353b3bc3b5458"),
            AgentConfig(id: "notebook", keyHash: "sha256:ba9213a547d5ae2ff555da0d912d86b5965123d3e7a740484b880744536d158c"),
        ]
    )

    @Test(arguments: ["tollgate.yaml", "tollgate.json"])
    func aFullConfigurationLoads(file: String) throws {
        let config = try loadConfig(try configFixture(file), file: file, environment: Self.environment)
        #expect(config == Self.expected)
        #expect(config.server(named: "stripe") == Self.expected.servers[1])
        #expect(config.server(named: "nope") == nil)
        #expect(config.agents[1].grant == "notebook")
    }

    @Test func theFullConfigurationLoadsFromBytes() throws {
        let data = Data(try configFixture("tollgate.yaml").utf8)
        let config = try GatewayConfigLoader.load(data, fileName: "tollgate.yaml", directory: "/etc/tollgate", environment: Self.environment)
        #expect(config == Self.expected)
    }

    @Test func theFormatIsDetectedFromContentWithoutAnExtension() throws {
        let config = try loadConfig(#"{"listen": "0.0.0.0:80"}"#, file: "config")
        #expect(config.listen == "0.0.0.0:80")
        let yaml = try loadConfig("listen: 0.0.0.0:81", file: "config")
        #expect(yaml.listen == "0.0.0.0:81")
    }

    @Test func anEmptyFileGivesTheDefaults() throws {
        for text in ["", "# only a comment\n", "{}"] {
            let config = try loadConfig(text)
            #expect(config == GatewayConfig())
            #expect(config.listen == "127.0.0.1:8420")
            #expect(config.database == nil)
            #expect(config.logging == LoggingSettings(level: "info", format: .text))
            #expect(config.limits.maxBodyBytes == 4 * 1024 * 1024)
            #expect(config.limits.maxHeldCalls == 1000)
            #expect(config.limits.maxSessions == 1000)
            #expect(config.limits.upstreamTimeout == .seconds(120))
            #expect(config.storeArguments == .full)
            #expect(config.servers.isEmpty && config.agents.isEmpty && config.allowedOrigins.isEmpty)
        }
    }

    @Test func nullValuesMeanTheDefault() throws {
        let config = try loadConfig("listen:\ndatabase: ~\nservers:\nagents:\nlogging:\nlimits: {max_sessions: null}")
        #expect(config == GatewayConfig())
    }

    @Test func serversKeepFileOrderAndInheritTheArgumentStorage() throws {
        let config = try loadConfig(
            """
            store_arguments: hash
            servers:
              zeta: {command: z, policy: z.yaml}
              alpha: {command: a, policy: a.yaml, store_arguments: full}
              mid: {url: "https://mid.example/mcp", policy: m.yaml}
            """)
        #expect(config.servers.map(\.name) == ["zeta", "alpha", "mid"])
        #expect(config.servers.map(\.storeArguments) == [.hash, .full, .hash])
        #expect(config.servers[2].upstream == .http(HTTPUpstream(url: "https://mid.example/mcp", transport: .streamableHTTP)))
    }

    @Test func pathsResolveAgainstTheConfigurationsDirectory() throws {
        let text = """
            data_directory: ./state/../db
            servers:
              a: {command: a, cwd: work, policy: policies//a.yaml}
              b: {command: b, cwd: /abs/dir/, policy: ../../../p.yaml}
            """
        let config = try loadConfig(text, directory: "/etc/tollgate")
        #expect(config.dataDirectory == "/etc/tollgate/db")
        #expect(config.servers[0].policyPath == "/etc/tollgate/policies/a.yaml")
        #expect(config.servers[1].policyPath == "/p.yaml")
        guard case .stdio(let a) = config.servers[0].upstream, case .stdio(let b) = config.servers[1].upstream else {
            Issue.record("expected stdio servers")
            return
        }
        #expect(a.directory == "/etc/tollgate/work")
        #expect(b.directory == "/abs/dir")
        let relative = try loadConfig("servers: {a: {command: a, policy: p.yaml}}", directory: "conf/")
        #expect(relative.servers[0].policyPath == "conf/p.yaml")
    }

    @Test func listenAddressesAreCheckedButKeptAsWritten() throws {
        for listen in ["127.0.0.1:8080", "0.0.0.0:0", "localhost:65535", "[::1]:8080", "[::]:443", "gateway.internal:9000"] {
            #expect(try loadConfig("listen: '\(listen)'").listen == listen)
        }
        for listen in ["8080", "localhost", ":8080", "127.0.0.1:65536", "::1:8080", "[::1]", "host:80x", "a b:1", ""] {
            #expect(configDiagnostics("listen: '\(listen)'").map(\.code) == [.invalidValue], "\(listen)")
        }
    }

    @Test func originsMustBeWrittenAsBrowsersSendThem() throws {
        let config = try loadConfig("allowed_origins: ['http://localhost:3000', 'https://a.example', 'http://[::1]:8080']")
        #expect(config.allowedOrigins == ["http://localhost:3000", "https://a.example", "http://[::1]:8080"])
        let suggestions = [
            "http://localhost:3000/": "http://localhost:3000",
            "HTTP://LocalHost:3000": "http://localhost:3000",
            "https://a.example:443": "https://a.example",
            "https://a.example/app?x=1": "https://a.example",
            "localhost:3000": "http://localhost:3000",
        ]
        for (origin, suggestion) in suggestions {
            let found = configDiagnostics("allowed_origins: ['\(origin)']")
            #expect(found.map(\.code) == [.invalidValue])
            #expect(found.first?.suggestion == suggestion, "\(origin)")
        }
        for origin in ["*", "null", "http://", "https://user@a.example", "http://a.example:0"] {
            #expect(configDiagnostics("allowed_origins: ['\(origin)']").map(\.code) == [.invalidValue], "\(origin)")
        }
    }

    @Test func upstreamURLsMustBeHTTPWithAHost() throws {
        for url in ["http://localhost:7000/mcp", "https://api.example.com/v1/mcp?team=a", "HTTPS://EXAMPLE.COM", "http://[::1]:9/"] {
            let config = try loadConfig("servers: {s: {url: '\(url)', policy: p}}")
            #expect(config.servers.first?.upstream == .http(HTTPUpstream(url: url)), "\(url)")
        }
        for url in [
            "ftp://example.com", "example.com/mcp", "https://", "https://user:pw@example.com", "https://exa mple.com", "https://a:99999/", "",
        ] {
            #expect(configDiagnostics("servers: {s: {url: '\(url)', policy: p}}").map(\.code) == [.invalidValue], "\(url)")
        }
        #expect(configDiagnostics("servers: {s: {url: 'example.com/mcp', policy: p}}").first?.suggestion == "https://example.com/mcp")
    }

    @Test func databaseTakesAURLOrAConnectionString() throws {
        #expect(try loadConfig("database: 'host=/run/postgresql dbname=tollgate'").database == "host=/run/postgresql dbname=tollgate")
        #expect(try loadConfig("database: postgres://db/tollgate").database == "postgres://db/tollgate")
        for database in ["mysql://db/x", "tollgate", "''"] {
            #expect(configDiagnostics("database: \(database)").map(\.code) == [.invalidValue], "\(database)")
        }
    }

    @Test func headersKeepTheirOrderAndRefuseWhatTheGatewaySets() throws {
        let config = try loadConfig("servers: {s: {url: 'https://x.dev', policy: p, headers: {b: '2', a: '1', X-Empty: ''}}}")
        guard case .http(let upstream) = config.servers[0].upstream else {
            Issue.record("expected an HTTP server")
            return
        }
        #expect(upstream.headers == [HTTPHeader(name: "b", value: "2"), HTTPHeader(name: "a", value: "1"), HTTPHeader(name: "X-Empty", value: "")])
        for name in ["Host", "content-length", "Transfer-Encoding", "CONNECTION", "Mcp-Session-Id", "Upgrade", "Keep-Alive"] {
            let found = configDiagnostics("servers: {s: {url: 'https://x.dev', policy: p, headers: {\(name): v}}}")
            #expect(found.map(\.code) == [.invalidName], "\(name)")
        }
        #expect(configDiagnostics("servers: {s: {url: 'https://x.dev', policy: p, headers: {'a:b': v}}}").map(\.code) == [.invalidName])
        #expect(
            configDiagnostics("servers: {s: {url: 'https://x.dev', policy: p, headers: {a: \"x\\r\\nHost: evil\"}}}").map(\.code) == [.invalidValue])
        #expect(configDiagnostics("servers: {s: {url: 'https://x.dev', policy: p, headers: {a: 1}}}").map(\.code) == [.wrongType])
    }

    @Test func namesFollowTheRule() throws {
        let long = String(repeating: "a", count: 63)
        let config = try loadConfig("servers: {\(long): {command: c, policy: p}, 0-a_b: {command: c, policy: p}}")
        #expect(config.servers.map(\.name) == [long, "0-a_b"])
        for name in ["-a", "_a", "a.b", "A", "é", long + "a", "''"] {
            #expect(configDiagnostics("servers: {\(name): {command: c, policy: p}}").map(\.code) == [.invalidName], "\(name)")
            #expect(
                configDiagnostics("agents: [{id: \(name), key_hash: '\(exampleKeyHash())'}]").map(\.code) == [.invalidName], "\(name)")
            #expect(
                configDiagnostics("agents: [{id: a, grant: \(name), key_hash: '\(exampleKeyHash())'}]").map(\.code) == [.invalidName],
                "\(name)")
        }
    }

    @Test func environmentValuesMustBeStrings() {
        let found = configDiagnostics("servers: {s: {command: c, policy: p, env: {PORT: 8080, DEBUG: true}, args: [--port, 8080]}}")
        #expect(found.map(\.code) == [.wrongType, .wrongType, .wrongType])
        #expect(found.first?.allowed?.contains("\"8080\"") == true)
        #expect(found.map(\.path) == ["servers.s.env.PORT", "servers.s.env.DEBUG", "servers.s.args[1]"])
    }

    @Test func limitsAreChecked() throws {
        let config = try loadConfig("limits: {max_body_bytes: 1024, max_held_calls: 1, max_sessions: 1000000, upstream_timeout: 90}")
        #expect(config.limits == GatewayLimits(maxBodyBytes: 1024, maxHeldCalls: 1, maxSessions: 1_000_000, upstreamTimeout: .seconds(90)))
        #expect(try loadConfig("limits: {max_body_bytes: 67108864}").limits.maxBodyBytes == 64 << 20)
        for limits in [
            "max_body_bytes: 1023", "max_body_bytes: 67108865", "max_body_bytes: 1.5", "max_held_calls: 0", "max_sessions: -1",
            "max_sessions: 1e300", "max_sessions: .nan",
        ] {
            #expect(configDiagnostics("limits: {\(limits)}").map(\.code) == [.invalidNumber], "\(limits)")
        }
        #expect(configDiagnostics("limits: {max_sessions: '10'}").map(\.code) == [.wrongType])
        #expect(configDiagnostics("limits: {upstream_timeout: 0}").map(\.code) == [.invalidDuration])
    }

    // MARK: Errors

    struct Case: Sendable, CustomTestStringConvertible {
        var code: SourceDiagnostic.Code
        var text: String
        var path: String
        var location: SourcePosition?
        var message = ""
        var suggestion: String?
        var file = "tollgate.yaml"
        var environment: [String: String] = [:]

        var testDescription: String { "\(code.rawValue) at \(path)" }
    }

    static let keyHash = exampleKeyHash()

    static let cases: [Case] = [
        Case(
            code: .unknownKey, text: "listen: 127.0.0.1:8080\nlimts: {}", path: "limts", location: SourcePosition(line: 2, column: 1),
            message: "unknown key `limts`", suggestion: "limits"),
        Case(
            code: .unknownKey, text: "servers:\n  time:\n    comand: mcp-server-time\n    policy: p.yaml", path: "servers.time.comand",
            location: SourcePosition(line: 3, column: 5), message: "unknown key `comand`", suggestion: "command"),
        Case(
            code: .duplicateKey, text: "servers:\n  s: {url: 'https://x.dev', policy: p, headers: {X-A: a, x-a: b}}",
            path: "servers.s.headers.x-a", location: SourcePosition(line: 2, column: 58),
            message: "`x-a` is the same header as `X-A` (header names ignore case)"),
        Case(
            code: .wrongType, text: "servers: [time]", path: "servers", location: SourcePosition(line: 1, column: 10),
            message: "expected a mapping of server names to servers, found a list"),
        Case(
            code: .wrongType, text: "listen: 8080", path: "listen", location: SourcePosition(line: 1, column: 9),
            message: "expected a string, found a number (8080)"),
        Case(
            code: .missingField, text: "servers:\n  s:\n    command: x", path: "servers.s.policy", location: SourcePosition(line: 3, column: 5),
            message: "the required field `policy` is missing"),
        Case(
            code: .missingField, text: "servers:\n  s: {policy: p.yaml}", path: "servers.s", location: SourcePosition(line: 2, column: 6),
            message: "the server has neither `command` nor `url`"),
        Case(
            code: .missingField, text: "agents: [{id: a}]", path: "agents[0].key_hash", location: SourcePosition(line: 1, column: 10),
            message: "the required field `key_hash` is missing"),
        Case(
            code: .misplacedField, text: "servers:\n  s: {command: x, url: 'https://x.dev', policy: p}", path: "servers.s.url",
            location: SourcePosition(line: 2, column: 19),
            message: "the server has both `command` and `url` (`command` is at 2:7); it is either a local process or a remote server"),
        Case(
            code: .misplacedField, text: "servers:\n  s: {command: x, policy: p, headers: {A: b}}", path: "servers.s.headers",
            location: SourcePosition(line: 2, column: 30), message: "`headers` only applies to a server reached by `url`"),
        Case(
            code: .misplacedField, text: "servers:\n  s: {url: 'https://x.dev', policy: p, args: [a]}", path: "servers.s.args",
            location: SourcePosition(line: 2, column: 40), message: "`args` only applies to a server started with `command`"),
        Case(
            code: .invalidValue, text: "servers:\n  stripe: {url: 'ftp://example.com', policy: p}", path: "servers.stripe.url",
            location: SourcePosition(line: 2, column: 17), message: "`ftp://example.com` is not an http or https URL"),
        Case(
            code: .invalidValue, text: "listen: localhost", path: "listen", location: SourcePosition(line: 1, column: 9),
            message: "`localhost` is not a listen address", suggestion: "localhost:8420"),
        Case(
            code: .invalidValue, text: "allowed_origins:\n  - http://localhost:3000/", path: "allowed_origins[0]",
            location: SourcePosition(line: 2, column: 5), suggestion: "http://localhost:3000"),
        Case(
            code: .invalidValue, text: "database: mysql://db/x", path: "database", location: SourcePosition(line: 1, column: 11),
            message: "`mysql://db/x` is not a PostgreSQL URL"),
        Case(
            code: .invalidValue, text: "store_arguments: hsah", path: "store_arguments", location: SourcePosition(line: 1, column: 18),
            message: "`hsah` is not allowed here", suggestion: "hash"),
        Case(
            code: .invalidValue, text: "logging:\n  level: infoo", path: "logging.level", location: SourcePosition(line: 2, column: 10),
            message: "`infoo` is not allowed here", suggestion: "info"),
        Case(
            code: .invalidValue, text: "servers: {s: {url: 'https://x.dev', transport: streamable_http, policy: p}}",
            path: "servers.s.transport", location: SourcePosition(line: 1, column: 48), suggestion: "streamable-http"),
        Case(
            code: .invalidValue, text: "agents:\n  - id: a\n    key_hash: SHA256:AB", path: "agents[0].key_hash",
            location: SourcePosition(line: 3, column: 15), message: "`SHA256:AB` is not a key hash"),
        Case(
            code: .invalidValue, text: "agents:\n  - {id: a, key_hash: '\(exampleKeyHash("A"))'}", path: "agents[0].key_hash",
            location: SourcePosition(line: 2, column: 23),
            message: "`\(exampleKeyHash("A").prefix(57))...` is not a key hash: the hex digits must be lowercase",
            suggestion: exampleKeyHash("a")),
        Case(
            code: .invalidValue, text: "servers:\n  stripe:\n    url: https://x.dev\n    policy: p\n    headers: {Authorization: 'Bearer ${TOKEN}'}",
            path: "servers.stripe.headers.Authorization", location: SourcePosition(line: 5, column: 30),
            message: "`${TOKEN}` refers to the environment variable `TOKEN`, which is not set"),
        Case(
            code: .invalidValue, text: "servers: {s: {command: c, policy: p, env: {A: \"\\0\"}}}", path: "servers.s.env.A",
            location: SourcePosition(line: 1, column: 47), message: "the value contains a NUL character, which an environment cannot hold"),
        Case(
            code: .invalidValue, text: "servers: {s: {command: '', policy: p}}", path: "servers.s.command",
            location: SourcePosition(line: 1, column: 24), message: "the command is empty"),
        Case(
            code: .invalidValue, text: "servers: {s: {command: c, policy: ''}}", path: "servers.s.policy",
            location: SourcePosition(line: 1, column: 35), message: "the path is empty"),
        Case(
            code: .invalidNumber, text: "limits:\n  max_body_bytes: 10", path: "limits.max_body_bytes", location: SourcePosition(line: 2, column: 19),
            message: "10 is out of range"),
        Case(
            code: .invalidDuration, text: "limits: {upstream_timeout: 2 minutes}", path: "limits.upstream_timeout",
            location: SourcePosition(line: 1, column: 28), message: "`2 minutes` is not a duration", suggestion: "minute"),
        Case(
            code: .invalidName, text: "servers:\n  Stripe: {url: 'https://x.dev', policy: p}", path: "servers.Stripe",
            location: SourcePosition(line: 2, column: 3), message: "`Stripe` is not a valid server name", suggestion: "stripe"),
        Case(
            code: .invalidName, text: "servers: {s: {url: 'https://x.dev', policy: p, headers: {Host: x}}}", path: "servers.s.headers.Host",
            location: SourcePosition(line: 1, column: 58),
            message: "the gateway sets `Host` itself (or it only concerns one connection), so it cannot be configured"),
        Case(
            code: .invalidName, text: "servers: {s: {command: c, policy: p, env: {'A=B': x}}}", path: "servers.s.env[\"A=B\"]",
            location: SourcePosition(line: 1, column: 44), message: "`A=B` is not an environment variable name"),
        Case(
            code: .duplicateKey, text: "servers:\n  s: {command: c, policy: p}\n  s: {command: d, policy: q}", path: "servers.s",
            location: SourcePosition(line: 3, column: 3), message: "the server `s` is defined twice; only the first counts"),
        Case(
            code: .duplicateEntry, text: "agents:\n  - {id: bot, key_hash: '\(keyHash)'}\n  - {id: bot, key_hash: '\(exampleKeyHash("b"))'}",
            path: "agents[1].id", location: SourcePosition(line: 3, column: 10), message: "the agent id `bot` is already used by agents[0]"),
        Case(
            code: .duplicateEntry, text: "agents:\n  - {id: a, key_hash: '\(keyHash)'}\n  - {id: b, key_hash: '\(keyHash)'}",
            path: "agents[1].key_hash", location: SourcePosition(line: 3, column: 23),
            message: "agents[1] has the same key hash as agents[0]; each agent needs its own key"),
        Case(
            code: .duplicateEntry, text: "allowed_origins: ['https://a.dev', 'https://a.dev']", path: "allowed_origins[1]",
            location: SourcePosition(line: 1, column: 36), message: "`https://a.dev` is already listed at allowed_origins[0]"),
        Case(
            code: .syntax, text: "servers: {s: {command: c, policy: p, args: ['${1X}']}}", path: "servers.s.args[0]",
            location: SourcePosition(line: 1, column: 45),
            message: "`${1X}` is not a valid reference: `${` must be followed by a variable name (a letter or `_`, then letters, digits or `_`)"),
        Case(code: .syntax, text: "listen: [", path: "", location: nil),
        Case(
            code: .syntax, text: #"{"listen": "a",}"#, path: "", location: SourcePosition(line: 1, column: 16), file: "tollgate.json"),
        Case(
            code: .wrongType, text: #"{"servers": {"s": {"command": ["a"], "policy": "p"}}}"#, path: "servers.s.command",
            location: SourcePosition(line: 1, column: 31), message: "expected a string, found a list", file: "tollgate.json"),
    ]

    @Test(arguments: cases)
    func eachErrorNamesFileLocationPathAndFix(_ expected: Case) {
        let found = configDiagnostics(expected.text, file: expected.file, environment: expected.environment)
        #expect(found.count == 1, "got \(found)")
        let diagnostic = found.first { $0.code == expected.code }
        #expect(diagnostic != nil, "got \(found)")
        guard let diagnostic else { return }
        #expect(diagnostic.file == expected.file)
        #expect(diagnostic.path == expected.path)
        if let location = expected.location { #expect(diagnostic.location == location) }
        if !expected.message.isEmpty { #expect(diagnostic.message == expected.message) }
        #expect(diagnostic.suggestion == expected.suggestion)
        if expected.code != .syntax { #expect(diagnostic.allowed != nil, "every config error says what is allowed") }
        #expect(diagnostic.description.hasPrefix(expected.file))
        #expect(diagnostic.description.contains("[\(expected.code.rawValue)]"))
    }

    @Test func everyErrorIsReportedNotJustTheFirst() {
        let found = configDiagnostics(
            """
            listen: 8080
            logging: {level: loud}
            limits:
              max_sessions: 0
            servers:
              good: {command: c, policy: p}
              Bad: {command: c, url: 'https://x.dev', policy: p}
              remote: {url: 'ftp://x', policy: p, headers: {Host: h}}
            agents:
              - {id: a, key_hash: nope}
              - {id: a, key_hash: '\(Self.keyHash)', extra: 1}
            """)
        let summary = found.map { "\($0.location?.description ?? "-") \($0.path) \($0.code.rawValue)" }
        #expect(
            summary == [
                "1:9 listen wrong-type",
                "2:18 logging.level invalid-value",
                "4:17 limits.max_sessions invalid-number",
                "7:3 servers.Bad invalid-name",
                "7:21 servers.Bad.url misplaced-field",
                "8:17 servers.remote.url invalid-value",
                "8:49 servers.remote.headers.Host invalid-name",
                "10:23 agents[0].key_hash invalid-value",
                "11:10 agents[1].id duplicate-entry",
                "11:98 agents[1].extra unknown-key",
            ], "\(summary)")
        let error = SourceValidationError(diagnostics: found)
        #expect(error.description.hasPrefix("10 errors in tollgate.yaml\ntollgate.yaml:1:9: listen: expected a string"))
    }

    @Test func aMisspeltUpstreamKeyIsNotAlsoReportedAsMissing() {
        #expect(configDiagnostics("servers: {s: {comand: c, policy: p}}").map(\.code) == [.unknownKey])
        #expect(configDiagnostics("servers: {s: {uri: 'https://x.dev', policy: p}}").first?.suggestion == "url")
        #expect(configDiagnostics("servers: {s: {policy: p, commandline: c}}").map(\.code) == [.missingField, .unknownKey])
    }

    @Test func unknownKeysAreSuggestedAtEveryLevel() {
        let found = configDiagnostics(
            """
            lisen: x
            logging: {levle: info}
            limits: {max_body_byte: 2048}
            servers: {s: {command: c, policy: p, enviroment: {}}}
            agents: [{id: a, key_hash: '\(Self.keyHash)', grnat: g}]
            """)
        #expect(found.map(\.code) == Array(repeating: .unknownKey, count: 5))
        #expect(found.map(\.suggestion) == ["listen", "level", "max_body_bytes", nil, "grant"])
        #expect(found.map(\.path) == ["lisen", "logging.levle", "limits.max_body_byte", "servers.s.enviroment", "agents[0].grnat"])
    }

    @Test func aRawKeyInPlaceOfItsHashIsCaught() {
        let key = AgentKey.generate()
        let found = configDiagnostics("agents: [{id: a, key_hash: '\(key)'}]")
        #expect(found.map(\.code) == [.invalidValue])
        #expect(found.first?.suggestion == AgentKey.hash(key))
        #expect(found.first?.description.contains(key) == false, "the key is not echoed into logs")
    }

    @Test func aGeneratedKeyFindsItsConfiguredAgent() throws {
        let keys = (0..<3).map { _ in AgentKey.generate() }
        let text = "agents:\n" + keys.enumerated().map { "  - {id: agent-\($0), key_hash: '\(AgentKey.hash($1))'}" }.joined(separator: "\n")
        let directory = AgentDirectory(try loadConfig(text).agents)
        for (index, key) in keys.enumerated() {
            #expect(directory.agent(forKey: key)?.id == "agent-\(index)")
        }
        #expect(directory.agent(forKey: AgentKey.generate()) == nil)
    }

    @Test func reviewersHaveRolesAndTheirTokensFindThem() throws {
        let tokens = (0..<3).map { _ in AgentKey.generate() }
        let text = """
            reviewers:
              - {id: alice, token_hash: '\(AgentKey.hash(tokens[0]))'}
              - {id: bob, role: admin, token_hash: '\(AgentKey.hash(tokens[1]))'}
              - {id: carol, role: auditor, token_hash: '\(AgentKey.hash(tokens[2]))'}
            """
        let reviewers = try loadConfig(text).reviewers
        #expect(reviewers.map(\.role) == [.reviewer, .admin, .auditor])
        let directory = ReviewerDirectory(reviewers)
        #expect(directory.reviewer(forToken: tokens[1])?.id == "bob")
        #expect(directory.reviewer(forToken: tokens[2])?.role.mayDecide == false)
        #expect(directory.reviewer(forToken: AgentKey.generate()) == nil)
    }

    @Test func aReviewersTokenCannotBeAnAgentsKeyNorAnotherReviewers() {
        let key = AgentKey.generate()
        let hash = AgentKey.hash(key)
        let shared = configDiagnostics(
            "agents: [{id: a, key_hash: '\(hash)'}]\nreviewers: [{id: alice, token_hash: '\(hash)'}]")
        #expect(shared.map(\.code) == [.duplicateEntry])
        #expect(shared.first?.description.contains("approve its own calls") == true)
        let twice = configDiagnostics("reviewers: [{id: alice, token_hash: '\(hash)'}, {id: bob, token_hash: '\(hash)'}]")
        #expect(twice.map(\.code) == [.duplicateEntry])
    }

    @Test func badReviewerEntriesAreEachReported() {
        let hash = AgentKey.hash(AgentKey.generate())
        let found = configDiagnostics(
            """
            reviewers:
              - {id: alice, role: boss, token_hash: '\(hash)'}
              - {id: 'Bad Name', token_hash: '\(AgentKey.hash(AgentKey.generate()))'}
              - {id: carol}
              - {id: dave, token_hash: '\(AgentKey.generate())'}
              - {id: erin, token_hash: '\(AgentKey.hash(AgentKey.generate()))', key_hash: x}
              - just-a-string
            """)
        #expect(found.count >= 6, "\(found)")
        #expect(found.contains { $0.path == "reviewers[0].role" })
        #expect(found.contains { $0.path == "reviewers[1].id" })
        #expect(found.contains { $0.path.hasPrefix("reviewers[2]") })
        #expect(found.contains { $0.path == "reviewers[3].token_hash" && $0.suggestion != nil })
        #expect(found.contains { $0.path.hasPrefix("reviewers[4]") })
        #expect(found.contains { $0.path.hasPrefix("reviewers[5]") })
    }

    @Test func argumentsAreKeptPerToolByTheMostSpecificEntry() throws {
        let config = try loadConfig(
            """
            store_arguments: keys
            servers:
              pay:
                command: pay-server
                policy: pay.yaml
                store_arguments: full
                store_arguments_by_tool: {transfer: hash, "create_*": keys, "create_customer*": full}
            """)
        let redaction = try #require(config.servers.first).argumentRedaction
        #expect(redaction.storage(for: "transfer") == .hash)
        #expect(redaction.storage(for: "create_invoice") == .keys)
        #expect(redaction.storage(for: "create_customer_portal") == .full)
        #expect(redaction.storage(for: "list_charges") == .full)
        let word = configDiagnostics("servers:\n  pay: {command: x, policy: p.yaml, store_arguments_by_tool: {transfer: hsah}}")
        #expect(word.contains { $0.path == "servers.pay.store_arguments_by_tool.transfer" && $0.suggestion == "hash" })
        let list = configDiagnostics("servers:\n  pay: {command: x, policy: p.yaml, store_arguments_by_tool: {refund: [hash]}}")
        #expect(list.contains { $0.path == "servers.pay.store_arguments_by_tool.refund" })
        #expect(configDiagnostics("servers:\n  pay: {command: x, policy: p.yaml, store_arguments_by_tool: [hash]}").count == 1)
    }

    @Test func webhooksAreCheckedWithEveryProblemReported() throws {
        let secret = WebhookSecret.generate().text
        let config = try loadConfig(
            """
            public_url: https://tollgate.example.com/
            servers:
              pay: {command: pay-server, policy: pay.yaml}
            webhooks:
              - {name: reviewers, url: "https://hooks.example.com/t", secrets: ["\(secret)"], servers: [pay], tools: ["trans*"],
                 events: [approval.requested], format: slack, timeout: 5s, retry_for: 2h, backoff: 10s}
            """)
        #expect(config.publicURL == "https://tollgate.example.com")
        let hook = try #require(config.webhooks.first)
        #expect(hook.events == [.requested])
        #expect(hook.format == .slack)
        #expect(hook.timeout == 5 && hook.retryFor == 7200 && hook.backoff == 10)
        #expect(hook.covers(server: "pay", tool: "transfer"))
        #expect(!hook.covers(server: "pay", tool: "refund"))

        let found = configDiagnostics(
            """
            servers:
              pay: {command: pay-server, policy: pay.yaml}
            webhooks:
              - {name: a, url: "ftp://example.com", secrets: ["whsec_not-base64!"]}
              - {name: a, url: "https://example.com", secrets: []}
              - {name: b, url: "https://example.com", secrets: ["\(secret)"], events: [approval.granted], servers: [pya], format: teams}
              - {name: c, url: "https://example.com", secrets: ["\(secret)"], timeout: 10m, redirects: follow}
              - {name: d, url: "https://example.com"}
            """)
        for path in [
            "webhooks[0].url", "webhooks[0].secrets[0]", "webhooks[1].name", "webhooks[1].secrets", "webhooks[2].events[0]", "webhooks[2].servers[0]",
            "webhooks[2].format", "webhooks[3].timeout", "webhooks[3].redirects",
        ] {
            #expect(found.contains { $0.path == path }, "no error at \(path): \(found)")
        }
        #expect(found.contains { $0.path.hasPrefix("webhooks[4]") })
        #expect(found.first { $0.path == "webhooks[2].servers[0]" }?.suggestion == "pay")
        #expect(!found.contains { $0.description.contains("whsec_not-base64") }, "a secret is never echoed")
    }
}
