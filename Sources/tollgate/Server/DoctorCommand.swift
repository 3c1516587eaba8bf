import ArgumentParser
import Foundation
import Logging
import TollgateCore
import TollgatePostgres
import TollgateServer

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `tollgate doctor`: what would stop `tollgate serve` from starting, found without serving.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Say what would stop `tollgate serve` from starting, without serving.",
        discussion: """
            Checks, in order, and prints one line for each: the configuration and every policy it names; each stdio \
            server's command (found and executable, on the PATH the server would get); each HTTP server (its host \
            answers a TCP connection within 2 s: a warning only, as serve starts without it); the listen address \
            (free to bind); and the database, opened exactly as serve opens it (the embedded cluster started when none \
            is configured and stopped again, migrations applied as serve would apply them, a role that could rewrite \
            the log refused).

            The exit status is 0 when nothing would stop serve (warnings allowed) and 1 otherwise.
            """
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The address serve would listen on (default: $TOLLGATE_LISTEN, the configuration's, else 127.0.0.1:8420).", valueName: "host:port"))
    var listen: String?

    @OptionGroup var configuration: ConfigOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    enum Status: String {
        case ok = "ok"
        case warning = "warn"
        case failure = "FAIL"
    }

    func run() async throws {
        var failed = false
        func say(_ status: Status, _ what: String, _ detail: String) {
            if status == .failure { failed = true }
            // One line each: a multi-line reason (libpq's) is joined.
            let oneLine = detail.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            print("\(status.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0)) \(what): \(oneLine)")
        }

        // The configuration and its policies.
        var config: GatewayConfig?
        if let path = configuration.path {
            do {
                config = try configuration.load()
                say(.ok, "configuration", "\(path) (\(config?.servers.count ?? 0) servers, \(config?.agents.count ?? 0) agents)")
            } catch {
                say(.failure, "configuration", "\(path) is not valid (its errors are above)")
            }
        } else {
            say(.warning, "configuration", "none given (--config or TOLLGATE_CONFIG): serve would run with no servers and no agents")
        }
        for server in config?.servers ?? [] {
            do {
                let policy = try PolicyLoader.load(try PolicyFile.read(server.policyPath), fileName: server.policyPath)
                say(.ok, "servers.\(server.name).policy", "\(server.policyPath) (\(policy.contentHash))")
            } catch let error as SourceValidationError {
                say(
                    .failure, "servers.\(server.name).policy", "\(error.diagnostics.count) error(s): \(error.diagnostics.first.map { "\($0)" } ?? "")"
                )
            } catch {
                say(.failure, "servers.\(server.name).policy", "\(error)")
            }
            switch server.upstream {
            case .stdio(let stdio):
                let path = stdio.environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
                if let found = Self.executable(stdio.command, path: path) {
                    say(.ok, "servers.\(server.name).command", found)
                } else {
                    say(.failure, "servers.\(server.name).command", "`\(stdio.command)` is not an executable file, nor one on PATH (\(path))")
                }
            case .http(let http):
                if let reason = Self.unreachable(http.url) {
                    say(.warning, "servers.\(server.name).url", "\(http.url): \(reason) (serve starts; calls to it fail until it answers)")
                } else {
                    say(.ok, "servers.\(server.name).url", "\(http.url) answers TCP")
                }
            }
        }

        // The listen address.
        let listen = listen ?? ProcessInfo.processInfo.environment["TOLLGATE_LISTEN"] ?? config?.listen ?? "127.0.0.1:8420"
        do {
            let address = try ListenAddress(listen)
            if let reason = Self.cannotBind(host: address.host, port: address.port) {
                say(.failure, "listen", "\(listen): \(reason)")
            } else {
                say(.ok, "listen", "\(listen) is free")
            }
        } catch {
            say(.failure, "listen", "\(error)")
        }

        // The database, opened as serve opens it.
        var connector = database.gatewayConnector(for: config)
        connector.maxConnections = 1
        let logger = logging.makeLogger("tollgate")
        do {
            let open = try await connector.open(logger: logger)
            do {
                let applied = try await Migrator(logger: logger).migrate(open.client)
                let role = try await RoleStore(client: open.client).currentRole()
                let what = connector.connectionString == nil ? "the embedded cluster" : "PostgreSQL"
                say(
                    .ok, "database",
                    "\(what) answers as `\(role)`; \(applied.isEmpty ? "migrations up to date" : "applied \(applied.count) migrations")")
            } catch {
                say(.failure, "database", "\(error)")
            }
            await open.close()
        } catch {
            say(.failure, "database", "\(error)")
        }

        print(failed ? "serve would not start: see the FAIL lines" : "nothing would stop serve")
        if failed { throw ExitCode(1) }
    }

    /// The executable `command` names: itself when it holds a `/`, else the first match on `path`.
    static func executable(_ command: String, path: String) -> String? {
        if command.contains("/") { return access(command, X_OK) == 0 && !isDirectory(command) ? command : nil }
        for folder in path.split(separator: ":") where !folder.isEmpty {
            let candidate = "\(folder)/\(command)"
            if access(candidate, X_OK) == 0 && !isDirectory(candidate) { return candidate }
        }
        return nil
    }

    static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    /// Why `host:port` cannot be bound now (as the HTTP server binds it, with SO_REUSEADDR), or `nil`.
    static func cannotBind(host: String, port: Int) -> String? {
        withAddresses(host: host, port: port, passive: true) { info in
            let socketDescriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard socketDescriptor >= 0 else { return String(cString: strerror(errno)) }
            defer { close(socketDescriptor) }
            var one: Int32 = 1
            setsockopt(socketDescriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(socketDescriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
                return errno == EADDRINUSE ? "the port is in use" : String(cString: strerror(errno))
            }
            return nil
        }
    }

    /// Why the URL's host does not answer a TCP connection within 2 s, or `nil`.
    static func unreachable(_ url: String) -> String? {
        guard let parts = URLComponents(string: url), let host = parts.host else { return "not a URL with a host" }
        let port = parts.port ?? (parts.scheme == "https" ? 443 : 80)
        return withAddresses(host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port, passive: false) { info in
            let socketDescriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue), info.pointee.ai_protocol)
            guard socketDescriptor >= 0 else { return String(cString: strerror(errno)) }
            defer { close(socketDescriptor) }
            if connect(socketDescriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return nil }
            guard errno == EINPROGRESS else { return String(cString: strerror(errno)) }
            var poller = pollfd(fd: socketDescriptor, events: Int16(POLLOUT), revents: 0)
            guard poll(&poller, 1, 2000) == 1 else { return "no answer within 2 s" }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socketDescriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            return error == 0 ? nil : String(cString: strerror(error))
        }
    }

    /// Runs `body` on each address of `host:port` until one gives `nil`; the last reason otherwise.
    static func withAddresses(host: String, port: Int, passive: Bool, _ body: (UnsafeMutablePointer<addrinfo>) -> String?) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else { return "cannot resolve \(host): \(String(cString: gai_strerror(status)))" }
        defer { freeaddrinfo(list) }
        var reason: String?
        var current: UnsafeMutablePointer<addrinfo>? = first
        while let info = current {
            reason = body(info)
            if reason == nil { return nil }
            current = info.pointee.ai_next
        }
        return reason
    }
}
