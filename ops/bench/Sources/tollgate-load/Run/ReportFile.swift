#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The report written to a file as well (`--report-file`), for a script that also shows the text to a person.
enum ReportFile {
    struct Failure: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "cannot write the report to \(path): \(reason)" }
    }

    /// Writes `text` to `path`, replacing what was there.
    static func write(_ text: String, to path: String) throws(Failure) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Failure(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var text = text
        let failure = text.withUTF8 { writeAll($0, to: descriptor) }
        if let failure { throw Failure(path: path, reason: String(cString: strerror(failure))) }
    }
}

/// Writes every byte to `descriptor`; the `errno` of a failed write, `nil` when all were written.
private func writeAll(_ bytes: UnsafeBufferPointer<UInt8>, to descriptor: Int32) -> Int32? {
    var offset = 0
    while offset < bytes.count {
        let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += written
    }
    return nil
}
