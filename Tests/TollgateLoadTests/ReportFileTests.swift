import Foundation
import Testing

@testable import tollgate_load

@Suite struct ReportFileTests {
    @Test func theReportReplacesWhatTheFileHeld() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-load-report-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ReportFile.write(#"{"calls_per_second":1000.5,"latency_ms":{"p50":0.3}}"# + "\n", to: path)
        try ReportFile.write(#"{"calls": 1}"# + "\n", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == #"{"calls": 1}"# + "\n")
    }

    @Test func aFileThatCannotBeWrittenIsRefusedWithItsPathAndReason() {
        let path = "/nonexistent-\(UUID().uuidString)/report.json"
        #expect {
            try ReportFile.write("{}", to: path)
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("No such file or directory")
        }
    }
}
