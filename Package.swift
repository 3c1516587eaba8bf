// swift-tools-version:6.1
import Foundation
import PackageDescription

/// Every numbered migration in `sql/`, embedded into TollgatePostgres so the binary needs no files beside it.
/// `Sources/TollgatePostgres/Migrations/sql` is a symbolic link to the top-level `sql/` folder (SwiftPM caches this
/// manifest and its build plan: after adding a file there, `rm -rf ~/.cache/org.swift.swiftpm/manifests .build/*.yaml`
/// so an existing build sees it).
let migrationFiles: [String] = {
    let folder = Context.packageDirectory + "/sql"
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return names.filter { $0.hasSuffix(".sql") }.sorted()
}()

let package = Package(
    name: "Tollgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tollgate", targets: ["tollgate"]),
        .library(name: "TollgateCore", targets: ["TollgateCore"]),
        .library(name: "TollgatePostgres", targets: ["TollgatePostgres"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        // Traces: the Tracing API, and OTLP over HTTP only (the gRPC exporter and its dependencies are left out).
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // libpq, Debian's libpq-dev. The shim includes <postgresql/libpq-fe.h> so no pkg-config is needed.
        .systemLibrary(
            name: "CLibPQ",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(
            name: "TollgateCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // posix_spawn with pipes and process groups, for PostgreSQL's programs and stdio MCP servers.
        .target(name: "TollgateSystem"),
        .target(
            name: "TollgatePostgres",
            dependencies: [
                "CLibPQ",
                "TollgateSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Migrations/sql/README.md"],
            resources: migrationFiles.map { .embedInCode("Migrations/sql/\($0)") }
        ),
        // JSON-RPC framing, upstream transports (stdio child, Streamable HTTP, legacy SSE) and the relay session.
        .target(
            name: "TollgateMCP",
            dependencies: [
                "TollgateCore",
                "TollgateSystem",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The upstream call's span: its context goes to HTTP upstreams as `traceparent`.
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "TollgateServer",
            dependencies: [
                "TollgateCore",
                "TollgateMCP",
                "TollgatePostgres",
                "TollgateSystem",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // The HTTP/1 pipeline's request parts as HTTPTypes (the handler that drains an unread body).
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            // The approvals API's OpenAPI document, served at /v1/openapi.json.
            resources: [.embedInCode("Approvals/openapi.json")]
        ),
        .executableTarget(
            name: "tollgate",
            dependencies: [
                "TollgateServer",
                "TollgateCore",
                "TollgatePostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "tollgate-bench",
            dependencies: [
                "TollgateCore",
                "TollgateMCP",
                "TollgatePostgres",
                "TollgateServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "ops/bench/Sources/tollgate-bench"
        ),
        // Load generator for MCP `tools/call` over Streamable HTTP: measures the latency the gateway adds (ops/bench/proxy).
        .executableTarget(
            name: "tollgate-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "ops/bench/Sources/tollgate-load"
        ),
        .testTarget(
            name: "TollgateCoreTests",
            dependencies: [
                "TollgateCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            exclude: ["Fixtures"]
        ),
        // A throw-away PostgreSQL cluster per test process, and fresh databases from it.
        .target(name: "TollgateTestSupport", dependencies: ["TollgateCore", "TollgatePostgres"], path: "Tests/TollgateTestSupport"),
        .testTarget(name: "TollgatePostgresTests", dependencies: ["TollgatePostgres", "TollgateTestSupport"]),
        .testTarget(
            name: "TollgateMCPTests",
            dependencies: [
                "TollgateMCP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TollgateLoadTests",
            dependencies: [
                "tollgate-load",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TollgateServerTests",
            dependencies: [
                "TollgateServer",
                "TollgateMCP",
                "tollgate",
                "TollgateTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
