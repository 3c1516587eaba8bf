import Testing

@testable import TollgateCore

@Suite("Agent keys and the agent directory")
struct ConfigAgentKeyTests {
    static let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    @Test func generatedKeysAreTgAnd43Base64URLCharacters() {
        var seen: Set<String> = []
        for _ in 0..<1000 {
            let key = AgentKey.generate()
            #expect(key.hasPrefix("tg_"))
            #expect(key.count == 46)
            #expect(key.dropFirst(3).allSatisfy { Self.alphabet.contains($0) })
            seen.insert(key)
        }
        #expect(seen.count == 1000)
    }

    @Test func generatedKeysUseEveryCharacterEventually() {
        var used: Set<Character> = []
        for _ in 0..<200 { used.formUnion(AgentKey.generate().dropFirst(3)) }
        #expect(used == Self.alphabet)
    }

    @Test(arguments: [
        ([UInt8](), ""), (Array("f".utf8), "Zg"), (Array("fo".utf8), "Zm8"), (Array("foo".utf8), "Zm9v"),
        (Array("foob".utf8), "Zm9vYg"), (Array("fooba".utf8), "Zm9vYmE"), (Array("foobar".utf8), "Zm9vYmFy"), ([0xFB, 0xFF], "-_8"),
    ])
    func base64URLMatchesRFC4648(bytes: [UInt8], expected: String) {
        #expect(AgentKey.base64URL(bytes) == expected)
    }

    @Test func hashIsPrefixedLowercaseHexSHA256() {
        #expect(AgentKey.hash("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(AgentKey.hash("") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(AgentKey.hash("tg_ci-bot-example-key") == "sha256:3cfb008d7de3a84fb54fb17b344cd0d1d38c136b3c2c9be8dc1353b3bc3b5458")
    }

    @Test func aKeyMatchesItsHashAndNoOther() {
        let key = AgentKey.generate()
        let hash = AgentKey.hash(key)
        #expect(AgentKey.matches(key, hash: hash))
        #expect(!AgentKey.matches(AgentKey.generate(), hash: hash))
        #expect(!AgentKey.matches(key + "x", hash: hash))
        #expect(!AgentKey.matches(String(key.dropLast()), hash: hash))
        #expect(!AgentKey.matches("", hash: hash))
    }

    @Test func malformedHashesMatchNothing() {
        let key = "tg_example"
        let hex = String(AgentKey.hash(key).dropFirst("sha256:".count))
        for hash in [
            "", hex, "sha256:", "SHA256:" + hex, "sha256:" + hex.uppercased(), "sha256:" + hex.dropLast(), "sha256:" + hex + "0",
            "sha512:" + hex, "sha256:" + hex.dropLast() + "g", " sha256:" + hex, "sha256:" + hex + "\n",
        ] {
            #expect(!AgentKey.matches(key, hash: hash), "\(hash)")
            #expect(!AgentKey.isWellFormedHash(hash), "\(hash)")
        }
        #expect(AgentKey.matches(key, hash: "sha256:" + hex))
    }

    @Test func constantTimeEqualityComparesEveryByte() {
        #expect(AgentKey.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!AgentKey.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!AgentKey.constantTimeEqual([0, 2, 3], [1, 2, 3]))
        #expect(!AgentKey.constantTimeEqual([1, 2], [1, 2, 3]))
        #expect(AgentKey.constantTimeEqual([], []))
    }

    // MARK: The directory

    @Test func theDirectoryFindsTheAgentForEachKey() {
        let keys = (0..<5).map { _ in AgentKey.generate() }
        let agents = keys.enumerated().map { AgentConfig(id: "agent-\($0)", grant: "grant-\($0 % 2)", keyHash: AgentKey.hash($1)) }
        let directory = AgentDirectory(agents)
        for (index, key) in keys.enumerated() {
            #expect(directory.agent(forKey: key) == agents[index])
        }
        #expect(directory.agent(forKey: AgentKey.generate()) == nil)
        #expect(directory.agent(forKey: "") == nil)
        #expect(directory.agent(forKey: agents[0].keyHash) == nil, "the hash is not a key")
    }

    @Test func malformedHashesInTheDirectoryMatchNothing() {
        let key = AgentKey.generate()
        let directory = AgentDirectory([
            AgentConfig(id: "upper", keyHash: AgentKey.hash(key).uppercased()),
            AgentConfig(id: "bare", keyHash: String(AgentKey.hash(key).dropFirst(7))),
        ])
        #expect(directory.agent(forKey: key) == nil)
        #expect(AgentDirectory([]).agent(forKey: key) == nil)
    }

    @Test func theFirstOfTwoAgentsSharingAHashWins() {
        let key = AgentKey.generate()
        let directory = AgentDirectory([
            AgentConfig(id: "first", keyHash: AgentKey.hash(key)), AgentConfig(id: "second", keyHash: AgentKey.hash(key)),
        ])
        #expect(directory.agent(forKey: key)?.id == "first")
    }

    @Test func theGrantDefaultsToTheId() {
        #expect(AgentConfig(id: "bot", keyHash: AgentKey.hash("tg_bot")).grant == "bot")
        #expect(AgentConfig(id: "bot", grant: "ci", keyHash: AgentKey.hash("tg_bot")).grant == "ci")
    }
}
