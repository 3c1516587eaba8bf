import Foundation
import Testing

@testable import TollgateCore

@Suite struct RandomUUIDTests {
    /// Call ids are version 4 UUIDs with the RFC 4122 variant, read back from their text, and never repeat.
    @Test func randomUUIDsAreVersionFourAndDistinct() {
        var seen = Set<UUID>()
        for _ in 0..<10_000 {
            let id = UUID.random()
            let text = id.uuidString
            #expect(Array(text)[14] == "4", "version nibble of \(text)")
            #expect("89AB".contains(Array(text)[19]), "variant of \(text)")
            #expect(UUID(uuidString: text) == id)
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
    }
}
