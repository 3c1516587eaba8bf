import Testing

@testable import TollgateCore

@Suite("Standard Webhooks signing and verification")
struct StandardWebhooksTests {
    // The vector of the official libraries' test suites (standard-webhooks/standard-webhooks, libraries/python/tests/
    // test_webhooks.py `test_sign_function` and libraries/go/webhook_test.go `TestWebhookSign`): this secret, id,
    // timestamp and payload sign to this signature. The key is 24 bytes, the specification's minimum.
    static let vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let vectorID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    static let vectorTimestamp: Int64 = 1_614_265_330
    static let vectorBody = Array(#"{"test": 2432232314}"#.utf8)
    static let vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    static let id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    static let timestamp: Int64 = 1_674_087_231
    static let body = Array(#"{"type":"approval.requested","data":{"id":"a-1"}}"#.utf8)

    /// Verifies with the fixed clock `now` (default: the delivery's own timestamp) and the default tolerance.
    @discardableResult
    static func verify(
        id: String? = StandardWebhooksTests.id, timestamp: String? = String(StandardWebhooksTests.timestamp), signature: String?,
        body: [UInt8] = StandardWebhooksTests.body, secrets: [WebhookSecret], now: Int64 = StandardWebhooksTests.timestamp,
        tolerance: Duration = StandardWebhooks.defaultTolerance
    ) throws(WebhookVerificationError) -> WebhookSecret {
        try StandardWebhooks.verify(
            id: id, timestamp: timestamp, signatureHeader: signature, body: body, secrets: secrets, now: now, tolerance: tolerance)
    }

    // MARK: The known vector

    @Test func theOfficialLibrariesVectorSignsToTheirSignature() throws {
        let secret = try WebhookSecret(parsing: Self.vectorSecret)
        #expect(secret.signature(id: Self.vectorID, timestamp: Self.vectorTimestamp, body: Self.vectorBody) == Self.vectorSignature)
    }

    @Test func theOfficialLibrariesVectorVerifies() throws {
        let secret = try WebhookSecret(parsing: Self.vectorSecret)
        let matched = try StandardWebhooks.verify(
            id: Self.vectorID, timestamp: String(Self.vectorTimestamp), signatureHeader: Self.vectorSignature, body: Self.vectorBody,
            secrets: [secret], now: Self.vectorTimestamp)
        #expect(matched == secret)
    }

    @Test func theOfficialLibrariesWrongSignatureIsRefused() throws {
        // Their test_invalid_signature_raises_error: the vector's signature with its last character changed.
        let secret = try WebhookSecret(parsing: Self.vectorSecret)
        #expect(throws: WebhookVerificationError.noMatchingSignature(v1Signatures: 1, secrets: 1)) {
            try StandardWebhooks.verify(
                id: Self.vectorID, timestamp: String(Self.vectorTimestamp),
                signatureHeader: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", body: Self.vectorBody, secrets: [secret],
                now: Self.vectorTimestamp)
        }
    }

    // MARK: Secrets

    @Test func aSecretsTextParsesBackToTheSameSecret() throws {
        let vector = try WebhookSecret(parsing: Self.vectorSecret)
        #expect(vector.text == Self.vectorSecret)
        #expect(vector.key.count == 24)
        for _ in 0..<100 {
            let secret = WebhookSecret.generate()
            #expect(try WebhookSecret(parsing: secret.text) == secret)
        }
    }

    @Test func generatedSecretsAre32RandomBytes() {
        var seen: Set<String> = []
        for _ in 0..<500 {
            let secret = WebhookSecret.generate()
            #expect(secret.key.count == 32)
            #expect(secret.text.hasPrefix("whsec_"))
            #expect(secret.text.count == 6 + 44)
            seen.insert(secret.text)
        }
        #expect(seen.count == 500)
        // Every bit position is 1 in some secret and 0 in another: no byte is stuck.
        let secrets = (0..<64).map { _ in WebhookSecret.generate().key }
        for index in 0..<32 {
            #expect(secrets.reduce(0 as UInt8) { $0 | $1[index] } == 0xFF)
            #expect(secrets.reduce(0xFF as UInt8) { $0 & $1[index] } == 0)
        }
    }

    @Test func keysOf24To64BytesAreAccepted() throws {
        for count in [24, 25, 32, 48, 63, 64] {
            let text = "whsec_" + Base64.encode([UInt8](repeating: 0xA5, count: count))
            #expect(try WebhookSecret(parsing: text).key.count == count)
        }
    }

    /// Texts that are not secrets, and why.
    static let badSecrets: [(text: String, expected: WebhookSecretError)] = [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", .missingPrefix),
        ("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", .missingPrefix),
        ("whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", .missingPrefix),
        (" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", .missingPrefix),
        ("", .missingPrefix),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", .notBase64),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", .notBase64),
        ("whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw", .notBase64),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_", .notBase64),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", .notBase64),
        ("whsec_!!!!!!!!", .notBase64),
        ("whsec_", .tooShort(keyBytes: 0)),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==", .notBase64),
        ("whsec_" + String(repeating: "A", count: 28) + "AA==", .tooShort(keyBytes: 22)),
        ("whsec_" + String(repeating: "A", count: 31) + "=", .tooShort(keyBytes: 23)),
        ("whsec_" + String(repeating: "A", count: 88) + "AA==", .tooLong(keyBytes: 67)),
        ("whsec_" + String(repeating: "A", count: 84) + "AAA=", .tooLong(keyBytes: 65)),
    ]

    @Test(arguments: badSecrets)
    func badSecretsAreRefusedWithTheirReason(text: String, expected: WebhookSecretError) {
        #expect(throws: expected) { try WebhookSecret(parsing: text) }
    }

    @Test func secretsAreNotPrinted() throws {
        let secret = try WebhookSecret(parsing: Self.vectorSecret)
        let key = String(Self.vectorSecret.dropFirst(6))
        for printed in ["\(secret)", String(describing: secret), String(reflecting: secret), "\([secret])"] {
            #expect(!printed.contains(key), "\(printed)")
            #expect(!printed.contains("MfKQ"), "\(printed)")
        }
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("MfKQ"))
        #expect(!dumped.contains("49"), "the first key byte, 0x31, printed in decimal")
    }

    @Test func secretErrorsSayWhatIsExpectedWithoutQuotingTheSecret() {
        #expect(WebhookSecretError.missingPrefix.description.contains("whsec_"))
        #expect(WebhookSecretError.notBase64.description.contains("base64"))
        #expect(WebhookSecretError.tooShort(keyBytes: 16).description.contains("16 bytes"))
        #expect(WebhookSecretError.tooShort(keyBytes: 16).description.contains("at least 24"))
        #expect(WebhookSecretError.tooLong(keyBytes: 65).description.contains("at most 64"))
    }

    // MARK: Headers and rotation

    @Test func aDeliveryCarriesIdTimestampAndOneSignaturePerSecret() throws {
        let new = WebhookSecret.generate()
        let old = WebhookSecret.generate()
        let headers = StandardWebhooks.headers(id: Self.id, timestamp: Self.timestamp, body: Self.body, secrets: [new, old])
        #expect(headers.fields.map(\.name) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(headers.fields.map(\.value) == [Self.id, "1674087231", headers.signature])
        let entries = headers.signature.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        #expect(
            entries == [
                new.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body),
                old.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body),
            ])
        #expect(entries[0] != entries[1])
        for entry in entries {
            #expect(entry.hasPrefix("v1,"))
            #expect(entry.count == 3 + 44)
        }
    }

    @Test func duringARotationEitherSecretVerifies() throws {
        let new = WebhookSecret.generate()
        let old = WebhookSecret.generate()
        let header = StandardWebhooks.signatureHeader(id: Self.id, timestamp: Self.timestamp, body: Self.body, secrets: [new, old])
        #expect(try Self.verify(signature: header, secrets: [new]) == new)
        #expect(try Self.verify(signature: header, secrets: [old]) == old)
        #expect(try Self.verify(signature: header, secrets: [old, new]) == old)
        #expect(try Self.verify(signature: header, secrets: [WebhookSecret.generate(), new]) == new)
        #expect(throws: WebhookVerificationError.noMatchingSignature(v1Signatures: 2, secrets: 2)) {
            try Self.verify(signature: header, secrets: [WebhookSecret.generate(), WebhookSecret.generate()])
        }
    }

    @Test func aReceiverWithBothSecretsAcceptsEitherSignatureAlone() throws {
        let new = WebhookSecret.generate()
        let old = WebhookSecret.generate()
        for signer in [new, old] {
            let header = signer.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body)
            #expect(try Self.verify(signature: header, secrets: [new, old]) == signer)
        }
    }

    @Test func anyMatchingV1EntryVerifiesAndOtherVersionsAreSkipped() throws {
        // The official libraries' test_multi_sig_payload_is_valid, plus an asymmetric entry as in the specification.
        let secret = WebhookSecret.generate()
        let valid = secret.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body)
        let header = [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", valid,
            "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        ].joined(separator: " ")
        #expect(try Self.verify(signature: header, secrets: [secret]) == secret)
        #expect(try Self.verify(signature: "  " + valid + "   v1a,x  ", secrets: [secret]) == secret, "extra spaces are no entries")
        // The same signature under another version is not a v1 signature.
        let relabelled = "v1a," + valid.dropFirst(3)
        #expect(throws: WebhookVerificationError.noMatchingSignature(v1Signatures: 0, secrets: 1)) {
            try Self.verify(signature: relabelled, secrets: [secret])
        }
    }

    // MARK: Tampering

    @Test func aChangedBodyIdOrTimestampFails() throws {
        let secret = WebhookSecret.generate()
        let header = secret.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body)
        #expect(try Self.verify(signature: header, secrets: [secret]) == secret)

        let noMatch = WebhookVerificationError.noMatchingSignature(v1Signatures: 1, secrets: 1)
        var flipped = Self.body
        flipped[10] ^= 0x01
        for body in [
            flipped, Self.body + [0x20], Array(Self.body.dropLast()), [], Array(#"{"type": "approval.requested","data":{"id":"a-1"}}"#.utf8),
        ] {
            #expect(throws: noMatch) { try Self.verify(signature: header, body: body, secrets: [secret]) }
        }
        for id in ["msg_2KWPBgLlAfxdpx2AI54pPJ85f4X", Self.id + " ", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4"] {
            #expect(throws: noMatch) { try Self.verify(id: id, signature: header, secrets: [secret]) }
        }
        for timestamp in [Self.timestamp + 1, Self.timestamp - 1] {
            #expect(throws: noMatch) { try Self.verify(timestamp: String(timestamp), signature: header, secrets: [secret]) }
        }
        // Moving the dot between id and timestamp changes what was signed.
        #expect(throws: noMatch) {
            try Self.verify(id: Self.id + ".1", timestamp: "674087231", signature: header, secrets: [secret], now: 674_087_231)
        }
        #expect(throws: noMatch) {
            try Self.verify(timestamp: "0" + String(Self.timestamp), signature: header, secrets: [secret])
        }
    }

    @Test func aSignatureByAnotherSecretOrWithAChangedByteFails() throws {
        let secret = WebhookSecret.generate()
        let noMatch = WebhookVerificationError.noMatchingSignature(v1Signatures: 1, secrets: 1)
        let other = WebhookSecret.generate().signature(id: Self.id, timestamp: Self.timestamp, body: Self.body)
        #expect(throws: noMatch) { try Self.verify(signature: other, secrets: [secret]) }

        let mac = secret.mac(id: Self.id, timestamp: String(Self.timestamp), body: Self.body)
        for index in [0, 15, 31] {
            var changed = mac
            changed[index] ^= 0x80
            #expect(throws: noMatch) { try Self.verify(signature: "v1," + Base64.encode(changed), secrets: [secret]) }
        }
        #expect(try Self.verify(signature: "v1," + Base64.encode(mac), secrets: [secret]) == secret)
    }

    // MARK: The tolerance window

    @Test func timestampsWithinFiveMinutesEitherWayAreAccepted() throws {
        let secret = WebhookSecret.generate()
        let header = secret.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body)
        for now in [Self.timestamp - 300, Self.timestamp - 1, Self.timestamp, Self.timestamp + 1, Self.timestamp + 300] {
            #expect(try Self.verify(signature: header, secrets: [secret], now: now) == secret)
        }
        #expect(throws: WebhookVerificationError.timestampTooOld(timestamp: Self.timestamp, now: Self.timestamp + 301, tolerance: 300)) {
            try Self.verify(signature: header, secrets: [secret], now: Self.timestamp + 301)
        }
        #expect(throws: WebhookVerificationError.timestampTooNew(timestamp: Self.timestamp, now: Self.timestamp - 301, tolerance: 300)) {
            try Self.verify(signature: header, secrets: [secret], now: Self.timestamp - 301)
        }
    }

    @Test func theToleranceIsChecked() throws {
        let secret = WebhookSecret.generate()
        let header = secret.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body)
        #expect(try Self.verify(signature: header, secrets: [secret], now: Self.timestamp + 10, tolerance: .seconds(10)) == secret)
        #expect(throws: WebhookVerificationError.timestampTooOld(timestamp: Self.timestamp, now: Self.timestamp + 11, tolerance: 10)) {
            try Self.verify(signature: header, secrets: [secret], now: Self.timestamp + 11, tolerance: .seconds(10))
        }
        #expect(try Self.verify(signature: header, secrets: [secret], now: Self.timestamp, tolerance: .zero) == secret)
        #expect(throws: WebhookVerificationError.timestampTooNew(timestamp: Self.timestamp, now: Self.timestamp - 1, tolerance: 0)) {
            try Self.verify(signature: header, secrets: [secret], now: Self.timestamp - 1, tolerance: .zero)
        }
        #expect(throws: WebhookVerificationError.timestampTooOld(timestamp: Self.timestamp, now: Self.timestamp + 1, tolerance: 0)) {
            try Self.verify(signature: header, secrets: [secret], now: Self.timestamp + 1, tolerance: .seconds(-5))
        }
    }

    @Test func theTimestampIsCheckedBeforeTheSignature() {
        // A stale delivery is refused as stale whatever its signature, as the official libraries do.
        #expect(throws: WebhookVerificationError.timestampTooOld(timestamp: 0, now: Self.timestamp, tolerance: 300)) {
            try Self.verify(timestamp: "0", signature: "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", secrets: [WebhookSecret.generate()])
        }
        #expect(throws: WebhookVerificationError.timestampTooNew(timestamp: Int64.max, now: Self.timestamp, tolerance: 300)) {
            try Self.verify(timestamp: String(Int64.max), signature: "garbage", secrets: [])
        }
        #expect(throws: WebhookVerificationError.timestampTooNew(timestamp: Self.timestamp, now: Int64.min, tolerance: 300)) {
            try Self.verify(signature: "garbage", secrets: [], now: Int64.min)
        }
    }

    @Test func aVerificationWithTheRealClockAcceptsADeliveryMadeNow() throws {
        let secret = WebhookSecret.generate()
        let now = StandardWebhooks.currentTimestamp()
        #expect(now > 1_700_000_000)
        let headers = StandardWebhooks.headers(id: Self.id, timestamp: now, body: Self.body, secrets: [secret])
        let matched = try StandardWebhooks.verify(
            id: headers.id, timestamp: String(headers.timestamp), signatureHeader: headers.signature, body: Self.body, secrets: [secret])
        #expect(matched == secret)
        #expect(throws: WebhookVerificationError.self) {
            try StandardWebhooks.verify(
                id: headers.id, timestamp: String(now - 3600), signatureHeader: headers.signature, body: Self.body, secrets: [secret])
        }
    }

    // MARK: Malformed headers

    @Test func missingHeadersAreNamed() {
        let secret = WebhookSecret.generate()
        let header = secret.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body)
        for id in [nil, ""] as [String?] {
            #expect(throws: WebhookVerificationError.missingHeader("webhook-id")) {
                try Self.verify(id: id, signature: header, secrets: [secret])
            }
        }
        for timestamp in [nil, ""] as [String?] {
            #expect(throws: WebhookVerificationError.missingHeader("webhook-timestamp")) {
                try Self.verify(timestamp: timestamp, signature: header, secrets: [secret])
            }
        }
        for signature in [nil, "", " ", "   "] as [String?] {
            #expect(throws: WebhookVerificationError.missingHeader("webhook-signature")) {
                try Self.verify(signature: signature, secrets: [secret])
            }
        }
    }

    @Test(arguments: [
        "hello", "1674087231.0", "1674087231.5", "-1674087231", "+1674087231", " 1674087231", "1674087231 ", "1e9", "0x63C8A43F",
        "99999999999999999999", "１６７４０８７２３１", "1674087231\n",
    ])
    func timestampsThatAreNotWholeSecondsAreRefused(timestamp: String) {
        let secret = WebhookSecret.generate()
        let header = secret.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body)
        #expect(throws: WebhookVerificationError.timestampNotANumber(String(reflecting: timestamp))) {
            try Self.verify(timestamp: timestamp, signature: header, secrets: [secret])
        }
    }

    /// `webhook-signature` values whose first entry is malformed, and what is wrong with it.
    static let malformedEntries: [(entry: String, problem: WebhookVerificationError.SignatureProblem)] = [
        ("v1", .noComma),
        ("g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", .noComma),
        (",g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", .emptyVersion),
        ("v1,", .wrongLength(bytes: 0)),
        ("v1,AAAA", .wrongLength(bytes: 3)),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OEA", .wrongLength(bytes: 33)),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=AAAA", .notBase64),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", .notBase64),
        ("v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=", .notBase64),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=", .notBase64),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=,x", .notBase64),
        ("v1,not base64!", .notBase64),
    ]

    @Test(arguments: malformedEntries)
    func malformedSignatureEntriesAreReported(entry: String, problem: WebhookVerificationError.SignatureProblem) throws {
        let secret = try WebhookSecret(parsing: Self.vectorSecret)
        // Splitting on spaces: the error names the first entry that is malformed.
        let first = String(entry.split(separator: " ").first ?? "")
        #expect(throws: WebhookVerificationError.malformedSignature(entry: String(reflecting: first), problem: problem)) {
            try StandardWebhooks.verify(
                id: Self.vectorID, timestamp: String(Self.vectorTimestamp), signatureHeader: entry, body: Self.vectorBody,
                secrets: [secret], now: Self.vectorTimestamp)
        }
        // A malformed entry does not hide a matching one, before it or after it.
        for header in ["\(entry) \(Self.vectorSignature)", "\(Self.vectorSignature) \(entry)"] {
            let matched = try StandardWebhooks.verify(
                id: Self.vectorID, timestamp: String(Self.vectorTimestamp), signatureHeader: header, body: Self.vectorBody,
                secrets: [secret], now: Self.vectorTimestamp)
            #expect(matched == secret)
        }
    }

    @Test func aMalformedEntryIsReportedRatherThanNoMatch() {
        let secret = WebhookSecret.generate()
        let header = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,Zm9v v1 v1a,xyz"
        #expect(throws: WebhookVerificationError.malformedSignature(entry: "\"v1,Zm9v\"", problem: .wrongLength(bytes: 3))) {
            try Self.verify(signature: header, secrets: [secret])
        }
    }

    @Test func withNoSecretNothingVerifies() {
        let header = WebhookSecret.generate().signature(id: Self.id, timestamp: Self.timestamp, body: Self.body)
        #expect(throws: WebhookVerificationError.noMatchingSignature(v1Signatures: 1, secrets: 0)) {
            try Self.verify(signature: header, secrets: [])
        }
        #expect(throws: WebhookVerificationError.noMatchingSignature(v1Signatures: 0, secrets: 0)) {
            try Self.verify(signature: "v1 v1a,x", secrets: [])
        }
        #expect(StandardWebhooks.signatureHeader(id: Self.id, timestamp: Self.timestamp, body: Self.body, secrets: []) == "")
    }

    // MARK: Messages

    @Test func receivedValuesInErrorsAreEscapedAndCut() {
        let secret = WebhookSecret.generate()
        let long = String(repeating: "9", count: 50) + "x" + String(repeating: "9", count: 50)
        #expect(throws: WebhookVerificationError.timestampNotANumber("\"" + String(long.prefix(80)) + "\"…")) {
            try Self.verify(timestamp: long, signature: "v1,x", secrets: [secret])
        }
        let error = WebhookVerificationError.malformedSignature(entry: StandardWebhooks.quoted("v1\u{1B}[31m\"x"), problem: .noComma)
        #expect(!error.description.contains("\u{1B}"))
        #expect(error.description.contains(#""v1\u{1B}[31m\"x""#))
    }

    @Test func errorMessagesSayWhatToCheck() {
        let cases: [(WebhookVerificationError, [String])] = [
            (.missingHeader("webhook-id"), ["no webhook-id header", "webhook-timestamp", "webhook-signature"]),
            (.timestampNotANumber("\"soon\""), ["webhook-timestamp \"soon\"", "whole number of seconds"]),
            (.timestampTooOld(timestamp: 1000, now: 1412, tolerance: 300), ["412 s behind", "(1412)", "at most 300 s", "clock"]),
            (.timestampTooNew(timestamp: 1412, now: 1000, tolerance: 300), ["412 s ahead", "(1000)", "at most 300 s", "clock"]),
            (.timestampTooOld(timestamp: 0, now: Int64.max, tolerance: 300), ["\(Int64.max) s behind"]),
            (.timestampTooNew(timestamp: Int64.max, now: Int64.min, tolerance: 300), ["\(UInt64.max) s ahead"]),
            (.malformedSignature(entry: "\"v1\"", problem: .noComma), ["entry \"v1\"", "no comma", "v1,"]),
            (.malformedSignature(entry: "\"v1,AAAA\"", problem: .wrongLength(bytes: 3)), ["3 bytes", "32"]),
            (.noMatchingSignature(v1Signatures: 2, secrets: 1), ["2 v1 signature", "1 secret", "raw body"]),
            (.noMatchingSignature(v1Signatures: 0, secrets: 1), ["no v1", "v1a"]),
            (.noMatchingSignature(v1Signatures: 1, secrets: 0), ["no secret", "whsec_"]),
        ]
        for (error, fragments) in cases {
            for fragment in fragments {
                #expect(error.description.contains(fragment), "\(error.description) should contain \(fragment)")
            }
        }
    }

    // MARK: Base64

    @Test(arguments: [
        ([UInt8](), ""), (Array("f".utf8), "Zg=="), (Array("fo".utf8), "Zm8="), (Array("foo".utf8), "Zm9v"),
        (Array("foob".utf8), "Zm9vYg=="), (Array("fooba".utf8), "Zm9vYmE="), (Array("foobar".utf8), "Zm9vYmFy"),
        ([0xFB, 0xFF, 0xBF], "+/+/"),
    ])
    func base64MatchesRFC4648(bytes: [UInt8], text: String) {
        #expect(Base64.encode(bytes) == text)
        #expect(Base64.decode(text) == bytes)
    }

    @Test func base64RoundTripsEveryLengthAndByte() {
        var generator = SystemRandomNumberGenerator()
        for count in 0..<70 {
            let bytes = (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        let all = (0...255).map(UInt8.init)
        #expect(Base64.decode(Base64.encode(all)) == all)
    }

    @Test(arguments: ["Zg", "Zg=", "Zh==", "Zm9=", "Zg==Zg==", "=Zg=", "Z===", "====", "Zm9v\n", " Zm9v", "Zm-_", "Zm9v=", "Zm\u{0}v"])
    func base64RefusesAnythingButCanonicalText(text: String) {
        #expect(Base64.decode(text) == nil)
    }
}
