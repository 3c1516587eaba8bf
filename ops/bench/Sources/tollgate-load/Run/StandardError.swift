#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Progress and warnings go to standard error, so that standard output holds only the report.
enum StandardError {
    static func print(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { bytes in
            _ = write(2, bytes.baseAddress, bytes.count)
        }
    }
}
