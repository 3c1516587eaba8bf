import Crypto
import Foundation

/// One tool's definition as an upstream listed it: the whole JSON object (every member the server sent), its canonical
/// JSON and the SHA-256 of that, which is what the inventory compares from one listing to the next.
///
/// ```swift
/// let seen = ToolDefinition(name: "get_weather", bytes: element)  // nil without a usable name
/// seen?.hash                                                      // "9f2c…", lowercase hex
/// ToolDefinition.diff(old: before, new: after)                    // [ToolDefinitionChange(member: "annotations.destructiveHint", ...)]
/// ```
public struct ToolDefinition: Sendable, Hashable {
    public var name: String
    /// The definition, parsed; nil when its canonical JSON is over ``maxDefinitionBytes`` (it is then neither parsed nor
    /// recorded whole, only hashed).
    public var json: JSONValue?
    /// The size of the canonical JSON, in bytes.
    public var bytes: Int
    /// SHA-256 of the canonical JSON, lowercase hex.
    public var hash: String

    /// The most bytes of a tool name the inventory records; a tool with a longer name is not recorded.
    public static let maxNameBytes = 256
    /// A definition whose canonical JSON is larger is recorded by its hash and size only (`definition` is null).
    public static let maxDefinitionBytes = 64 << 10
    /// Each side of one change in a diff keeps at most this many bytes of canonical JSON (`…` marks a cut).
    public static let maxChangeTextBytes = 2048
    /// A diff names at most this many changed members (`changesOmitted` counts the rest).
    public static let maxChanges = 32

    /// One tool object's JSON bytes as the server sent them (`name`: its name); nil when the name is empty or over
    /// ``maxNameBytes``, or the bytes are not JSON. Canonicalizes without building a value: only a definition within
    /// ``maxDefinitionBytes`` is parsed.
    public init?(name: String, bytes: [UInt8]) {
        guard !name.isEmpty, name.utf8.count <= Self.maxNameBytes, let canonical = try? CanonicalJSON.canonicalize(bytes) else { return nil }
        self.name = name
        self.bytes = canonical.count
        self.hash = Self.hex(SHA256.hash(data: canonical))
        self.json = canonical.count <= Self.maxDefinitionBytes ? try? JSONValue(parsing: String(decoding: canonical, as: UTF8.self)) : nil
    }

    /// The hash of one tool object's bytes (``hash`` without the rest): nil when they are not JSON.
    public static func hash(of bytes: [UInt8]) -> String? {
        guard let canonical = try? CanonicalJSON.canonicalize(bytes) else { return nil }
        return hex(SHA256.hash(data: canonical))
    }

    private static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// The tool as the risk classifier reads it: the definition, or for one over the size cap its name alone plus a
    /// reason saying so (its description is not read).
    public var descriptor: ToolDescriptor {
        json.flatMap { try? ToolDescriptor(json: $0) } ?? ToolDescriptor(name: name)
    }

    /// What differs between two definitions, member by member (objects are compared down to three levels, so a flipped
    /// `annotations.destructiveHint` or one property of `inputSchema.properties` is named as such), in member order;
    /// at most ``maxChanges``, and how many more there were.
    public static func diff(old: JSONValue, new: JSONValue) -> (changes: [ToolDefinitionChange], omitted: Int) {
        var changes: [ToolDefinitionChange] = []
        var omitted = 0
        func text(_ value: JSONValue?) -> String? { value.map { $0.canonicalJSON.cut(toBytes: maxChangeTextBytes) } }
        func walk(_ old: JSONValue?, _ new: JSONValue?, path: String, depth: Int) {
            if old == new { return }
            if depth < 3, let before = old?.objectValue, let after = new?.objectValue {
                for key in Set(before.keys).union(after.keys).sorted() {
                    walk(before[key], after[key], path: path.isEmpty ? key : path + "." + key, depth: depth + 1)
                }
                return
            }
            if changes.count >= maxChanges {
                omitted += 1
                return
            }
            changes.append(ToolDefinitionChange(member: path.isEmpty ? "(definition)" : path, old: text(old), new: text(new)))
        }
        walk(old, new, path: "", depth: 0)
        return (changes, omitted)
    }
}

/// One member that differs between two definitions: its path (`description`, `annotations.destructiveHint`) and its
/// canonical JSON before and after (nil: absent), each cut to ``ToolDefinition/maxChangeTextBytes``.
public struct ToolDefinitionChange: Codable, Sendable, Hashable {
    public var member: String
    public var old: String?
    public var new: String?

    public init(member: String, old: String?, new: String?) {
        self.member = member
        self.old = old
        self.new = new
    }
}

/// `ToolDefinitionObserved`: the first sighting of a tool on a server (or its return after `ToolRemoved`).
public struct ToolDefinitionObserved: Codable, Sendable, Hashable {
    public static let type = "ToolDefinitionObserved"
    public var server: String
    public var tool: String
    public var hash: String
    /// The whole definition; nil when it was over ``ToolDefinition/maxDefinitionBytes`` (the hash covers it all).
    public var definition: JSONValue?
    public var definitionBytes: Int
    public var category: String
    public var level: String
    public var reasons: [String]
    /// True when this definition was accepted as part of the server's baseline: recorded from the server's first listing
    /// under a policy with `first_listing: accept` (the default). Otherwise (nil) the tool waits for a
    /// ``ToolDefinitionAccepted`` before its calls run unheld (docs/inventory.md, "Pinning").
    public var baseline: Bool?

    public init(server: String, definition: ToolDefinition, risk: RiskAssessment, baseline: Bool = false) {
        self.server = server
        self.tool = definition.name
        self.hash = definition.hash
        self.definition = definition.json
        self.definitionBytes = definition.bytes
        self.category = risk.category.rawValue
        self.level = risk.level.rawValue
        self.reasons = risk.reasons
        self.baseline = baseline ? true : nil
    }
}

/// `ToolDefinitionChanged`: a tool's definition hash differs from the one last recorded.
public struct ToolDefinitionChanged: Codable, Sendable, Hashable {
    public static let type = "ToolDefinitionChanged"
    public var server: String
    public var tool: String
    public var oldHash: String
    public var hash: String
    public var definition: JSONValue?
    public var definitionBytes: Int
    /// What changed; empty with a `note` when the previous definition was not recorded (over the size cap).
    public var changes: [ToolDefinitionChange]
    public var changesOmitted: Int
    public var note: String?
    public var category: String
    public var level: String
    public var reasons: [String]

    public init(server: String, oldHash: String, old: JSONValue?, definition: ToolDefinition, risk: RiskAssessment) {
        self.server = server
        self.tool = definition.name
        self.oldHash = oldHash
        self.hash = definition.hash
        self.definition = definition.json
        self.definitionBytes = definition.bytes
        if let old, let new = definition.json {
            (changes, changesOmitted) = ToolDefinition.diff(old: old, new: new)
            note = nil
        } else {
            changes = []
            changesOmitted = 0
            note =
                "the \(old == nil ? "previous" : "new") definition is over \(ToolDefinition.maxDefinitionBytes) bytes and is recorded by its hash only: no diff"
        }
        self.category = risk.category.rawValue
        self.level = risk.level.rawValue
        self.reasons = risk.reasons
    }
}

/// `ToolRemoved`: a tool recorded on a server is missing from a whole listing of its tools.
public struct ToolRemoved: Codable, Sendable, Hashable {
    public static let type = "ToolRemoved"
    public var server: String
    public var tool: String
    /// The hash of the definition last recorded.
    public var hash: String

    public init(server: String, tool: String, hash: String) {
        self.server = server
        self.tool = tool
        self.hash = hash
    }
}

/// `ToolDefinitionAccepted`: someone accepted one definition (by its hash) of a tool, so calls of the tool while the
/// server lists that definition run without a definition hold. Appended by `tollgate inventory accept`, the inventory
/// API, or a reviewer approving a call held for a definition change (then `approvalID` names the request).
public struct ToolDefinitionAccepted: Codable, Sendable, Hashable {
    public static let type = "ToolDefinitionAccepted"
    public var server: String
    public var tool: String
    /// The hash of the definition accepted: only that definition (a later change needs accepting again).
    public var hash: String
    /// Who accepted it: a reviewer's name, or the operator's for the CLI.
    public var by: String
    public var comment: String?
    /// The approval request (its id, lowercase) whose approval accepted it, when that is how.
    public var approvalID: String?
    public var acceptedAt: Date

    public init(server: String, tool: String, hash: String, by: String, comment: String? = nil, approvalID: UUID? = nil, acceptedAt: Date) {
        self.server = server
        self.tool = tool
        self.hash = hash
        self.by = by
        self.comment = comment
        self.approvalID = approvalID?.lowercasedString
        self.acceptedAt = acceptedAt
    }
}

/// The four inventory events, decoded.
public enum ToolDefinitionEvent: Sendable, Hashable {
    case observed(ToolDefinitionObserved)
    case changed(ToolDefinitionChanged)
    case removed(ToolRemoved)
    case accepted(ToolDefinitionAccepted)

    public static let types: Set<String> = [
        ToolDefinitionObserved.type, ToolDefinitionChanged.type, ToolRemoved.type, ToolDefinitionAccepted.type,
    ]

    /// The stream of one server's inventory events: every append to it names the version it read, so two gateways
    /// (or two sessions) that see the same change append it once.
    public static func stream(server: String) -> String { "tools-" + server }

    public static func decode(type: String, data: [UInt8]) throws -> ToolDefinitionEvent? {
        switch type {
        case ToolDefinitionObserved.type: return .observed(try EventCoding.decode(ToolDefinitionObserved.self, from: data))
        case ToolDefinitionChanged.type: return .changed(try EventCoding.decode(ToolDefinitionChanged.self, from: data))
        case ToolRemoved.type: return .removed(try EventCoding.decode(ToolRemoved.self, from: data))
        case ToolDefinitionAccepted.type: return .accepted(try EventCoding.decode(ToolDefinitionAccepted.self, from: data))
        default: return nil
        }
    }

    public var server: String {
        switch self {
        case .observed(let event): return event.server
        case .changed(let event): return event.server
        case .removed(let event): return event.server
        case .accepted(let event): return event.server
        }
    }

    public var tool: String {
        switch self {
        case .observed(let event): return event.tool
        case .changed(let event): return event.tool
        case .removed(let event): return event.tool
        case .accepted(let event): return event.tool
        }
    }
}
