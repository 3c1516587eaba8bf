import Testing

@testable import TollgateCore

@Suite("Gateway configuration: environment substitution")
struct ConfigSubstitutionTests {
    static let environment = ["A": "alpha", "EMPTY": "", "NESTED": "${A}", "DOLLAR": "$${A}", "PORT": "8080", "_x1": "u"]

    func substitute(_ text: String) -> EnvironmentSubstitution {
        EnvironmentSubstitution(text, environment: Self.environment)
    }

    @Test(arguments: [
        ("${A}", "alpha"),
        ("x${A}y${A}", "xalphayalpha"),
        ("${_x1}", "u"),
        ("é${A}ü", "éalphaü"),
        ("${EMPTY}", ""),
        ("${MISSING:-fallback}", "fallback"),
        ("${MISSING:-}", ""),
        ("${EMPTY:-fallback}", "fallback"),
        ("${A:-fallback}", "alpha"),
        ("${MISSING:-a b:c-d $x}", "a b:c-d $x"),
        ("$${A}", "${A}"),
        ("$${MISSING}", "${MISSING}"),
        ("cost: $5 and $$ and a$", "cost: $5 and $$ and a$"),
        ("$$${A}", "$${A}"),
        ("${NESTED}", "${A}"),
        ("${DOLLAR}", "$${A}"),
        ("no references", "no references"),
    ])
    func referencesAreReplaced(text: String, expected: String) {
        let result = substitute(text)
        #expect(result.problems.isEmpty)
        #expect(result.value == expected)
    }

    @Test func substitutionIsRecorded() {
        #expect(substitute("plain $ text").substituted == false)
        #expect(substitute("${A}").substituted)
        #expect(substitute("$${A}").substituted)
    }

    @Test func unsetVariablesAreProblemsNeverEmpty() {
        let result = substitute("${A}-${MISSING}-${OTHER}")
        #expect(result.problems == [.undefined(name: "MISSING"), .undefined(name: "OTHER")])
    }

    @Test(arguments: ["${}", "${1A}", "${A-b}", "${A", "${A:-x", "${A:?x}", "${ A}", "${A.B}", "${A:-${B}}", "${é}", "x${"])
    func malformedReferencesAreSyntaxProblems(text: String) {
        let result = substitute(text)
        #expect(result.problems.count == 1)
        guard case .syntax(let reference, let reason)? = result.problems.first else {
            Issue.record("expected a syntax problem, got \(result.problems)")
            return
        }
        #expect(reference.hasPrefix("${"))
        #expect(!reason.isEmpty)
    }

    // MARK: In the configuration

    @Test func everyStringFieldIsSubstituted() throws {
        let environment = [
            "LISTEN": "0.0.0.0:9000", "DB_PASSWORD": "s3cret", "TOKEN": "tok", "HOST": "mcp.example.com", "ZONE": "UTC",
            "BIN": "/usr/local/bin/server", "ROOT": "/srv", "LEVEL": "debug", "HASH": exampleKeyHash("c"), "STORE": "keys",
        ]
        let config = try loadConfig(
            """
            listen: ${LISTEN}
            database: "host=db password=${DB_PASSWORD}"
            data_directory: ${ROOT}/data
            logging: {level: "${LEVEL}"}
            store_arguments: ${STORE}
            allowed_origins: ["https://${HOST}"]
            servers:
              local:
                command: ${BIN}
                args: [--zone, "${ZONE}", "--literal=$${ZONE}"]
                env: {TZ: "${ZONE}", PLAIN: "a$b"}
                cwd: ${ROOT}/work
                policy: ${ROOT}/policies/local.yaml
              remote:
                url: https://${HOST}/mcp
                headers: {Authorization: "Bearer ${TOKEN}"}
                policy: remote.yaml
            agents:
              - {id: a, key_hash: "${HASH}"}
            """, environment: environment)
        #expect(config.listen == "0.0.0.0:9000")
        #expect(config.database == "host=db password=s3cret")
        #expect(config.dataDirectory == "/srv/data")
        #expect(config.logging.level == "debug")
        #expect(config.storeArguments == .keys)
        #expect(config.allowedOrigins == ["https://mcp.example.com"])
        #expect(
            config.servers[0].upstream
                == .stdio(
                    StdioUpstream(
                        command: "/usr/local/bin/server", arguments: ["--zone", "UTC", "--literal=${ZONE}"],
                        environment: ["TZ": "UTC", "PLAIN": "a$b"], directory: "/srv/work")))
        #expect(config.servers[0].policyPath == "/srv/policies/local.yaml")
        #expect(
            config.servers[1].upstream
                == .http(HTTPUpstream(url: "https://mcp.example.com/mcp", headers: [HTTPHeader(name: "Authorization", value: "Bearer tok")])))
        #expect(config.agents[0].keyHash == exampleKeyHash("c"))
    }

    @Test func numbersAndDurationsCanComeFromTheEnvironment() throws {
        let text = "limits: {max_sessions: '${SESSIONS:-50}', max_body_bytes: '${BODY}', upstream_timeout: '${TIMEOUT}'}"
        let config = try loadConfig(text, environment: ["BODY": "2048", "TIMEOUT": "30"])
        #expect(config.limits.maxSessions == 50)
        #expect(config.limits.maxBodyBytes == 2048)
        #expect(config.limits.upstreamTimeout == .seconds(30))
        let minutes = try loadConfig(text, environment: ["BODY": "2048", "TIMEOUT": "5m"])
        #expect(minutes.limits.upstreamTimeout == .seconds(300))
        let found = configDiagnostics(text, environment: ["BODY": "lots", "TIMEOUT": "30"])
        #expect(found.map(\.code) == [.wrongType])
        #expect(found.first?.path == "limits.max_body_bytes")
    }

    @Test func anUndefinedVariableNamesTheVariableAndTheField() {
        let found = configDiagnostics("servers:\n  s:\n    command: c\n    policy: p\n    env: {TOKEN: '${API_TOKEN}'}")
        #expect(found.map(\.code) == [.invalidValue])
        #expect(found.first?.path == "servers.s.env.TOKEN")
        #expect(found.first?.location == SourcePosition(line: 5, column: 18))
        #expect(found.first?.message == "`${API_TOKEN}` refers to the environment variable `API_TOKEN`, which is not set")
        #expect(found.first?.allowed?.contains("${API_TOKEN:-value}") == true)
    }

    @Test func everyUndefinedVariableIsReportedOncePerField() {
        let found = configDiagnostics("database: 'host=${H} user=${U} password=${H}'\nlisten: '${L}:80'")
        #expect(found.map(\.message).map { $0.prefix(6) } == ["`${H}`", "`${U}`", "`${L}`"])
    }

    @Test func aValueSetToAReferenceIsNotExpandedAgain() throws {
        let config = try loadConfig("servers: {s: {command: c, policy: p, args: ['${X}']}}", environment: ["X": "${Y}"])
        #expect(config.servers[0].upstream == .stdio(StdioUpstream(command: "c", arguments: ["${Y}"])))
    }

    @Test func keysAreNeverSubstituted() throws {
        let config = try loadConfig("servers: {s: {command: c, policy: p, env: {'${NAME}': v}}}", environment: ["NAME": "X"])
        #expect(config.servers[0].upstream == .stdio(StdioUpstream(command: "c", environment: ["${NAME}": "v"])))
        #expect(configDiagnostics("servers: {'${NAME}': {command: c, policy: p}}", environment: ["NAME": "x"]).map(\.code) == [.invalidName])
    }

    @Test func valuesUnderUnknownKeysAreNotSubstituted() {
        #expect(configDiagnostics("limts: {x: '${NOPE}'}").map(\.code) == [.unknownKey])
    }

    @Test func aLineBreakFromTheEnvironmentCannotSmuggleAHeader() {
        let found = configDiagnostics(
            "servers: {s: {url: 'https://x.dev', policy: p, headers: {Authorization: 'Bearer ${TOKEN}'}}}",
            environment: ["TOKEN": "abc\r\nX-Admin: yes"])
        #expect(found.map(\.code) == [.invalidValue])
        #expect(found.first?.message == "the value of `Authorization` contains a line break (after substituting environment variables)")
    }

    @Test func substitutedURLsAndDatabasesAreChecked() {
        #expect(
            configDiagnostics("servers: {s: {url: '${U}', policy: p}}", environment: ["U": "file:///etc/passwd"]).map(\.code) == [.invalidValue])
        #expect(configDiagnostics("database: '${D}'", environment: ["D": ""]).map(\.code) == [.invalidValue])
        #expect(configDiagnostics("database: '${D:-}'").map(\.code) == [.invalidValue])
    }
}
