import Foundation
import Logging
import TollgatePostgres

/// The database a benchmark runs on: the one given, or a throw-away embedded cluster with PostgreSQL's durable
/// defaults (fsync on) in a temporary directory, stopped and removed by `close`.
struct BenchDatabase {
    let configuration: PostgresConfiguration
    private let embedded: EmbeddedPostgres?

    init(connectionString: String?, name: String, logger: Logger) throws {
        if let connectionString {
            configuration = PostgresConfiguration(connectionString)
            embedded = nil
        } else {
            let directory = URL(fileURLWithPath: "/tmp/tollgate-bench-\(name)-\(getpid())")
            try? FileManager.default.removeItem(at: directory)
            let cluster = EmbeddedPostgres(dataDirectory: directory, logger: logger)
            configuration = try cluster.start()
            embedded = cluster
            print("cluster: embedded, durable defaults, \(directory.path)")
        }
    }

    func close() {
        guard let embedded else { return }
        try? embedded.stop(immediate: true)
        try? FileManager.default.removeItem(at: embedded.dataDirectory)
    }
}
