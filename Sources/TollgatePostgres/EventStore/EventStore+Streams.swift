extension EventStore {
    /// One event of a stream as `events(ofStreams:on:)` reads it: its data as JSON text.
    public struct StreamEvent: Sendable, Hashable {
        public var streamID: String
        public var version: Int64
        public var type: String
        public var data: [UInt8]
    }

    /// Every event of the streams `ids`, by stream and then version, on a connection the caller holds.
    public static func events(ofStreams ids: [String], on connection: PostgresConnection) throws -> [StreamEvent] {
        let events = try connection.query(
            "SELECT stream_id, version, type, data::text FROM tollgate.events WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version",
            [PostgresArray(ids)])
        return try events.rows.map { row in
            StreamEvent(
                streamID: try row.decode(String.self, 0), version: try row.decode(Int64.self, 1), type: try row.decode(String.self, 2),
                data: Array(try row.decode(String.self, 3).utf8))
        }
    }

    /// The types and data (JSON text) of one stream's events up to `version`, in order, on a connection the caller holds.
    public static func events(
        ofStream id: String, throughVersion version: Int64, on connection: PostgresConnection
    ) throws -> [(
        type: String, data: [UInt8]
    )] {
        let stream = try connection.query(
            "SELECT type, data::text FROM tollgate.events WHERE stream_id = $1 AND version <= $2 ORDER BY version",
            [id, version])
        return try stream.rows.map { row in (try row.decode(String.self, 0), try row.decode(JSONText.self, 1).bytes) }
    }
}
