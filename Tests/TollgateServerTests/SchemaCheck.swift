import TollgateCore

/// A small JSON Schema checker for the parts of OpenAPI 3.1 that `/v1/openapi.json` uses: `$ref` (local),
/// `allOf`, `oneOf`, `type` (one or several), `enum`, `required`, `properties`, `additionalProperties: false`,
/// `items`. Returns the problems found, each with its JSON path; empty means the value conforms.
struct SchemaCheck {
    let document: JSONValue

    func problems(_ value: JSONValue, _ schema: JSONValue, path: String = "$") -> [String] {
        if let ref = schema["$ref"]?.stringValue {
            guard let target = resolve(ref) else { return ["\(path): unresolvable $ref \(ref)"] }
            return problems(value, target, path: path)
        }
        var found: [String] = []
        for part in schema["allOf"]?.arrayValue ?? [] { found += problems(value, part, path: path) }
        if let options = schema["oneOf"]?.arrayValue {
            let matching = options.filter { problems(value, $0, path: path).isEmpty }.count
            if matching != 1 { found.append("\(path): matches \(matching) of the oneOf schemas, not exactly one") }
        }
        if let type = schema["type"] {
            let types = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            if !types.contains(where: { Self.has(value, type: $0) }) {
                return found + ["\(path): \(value.canonicalJSON.prefix(80)) is not of type \(types.joined(separator: " or "))"]
            }
        }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) {
            found.append("\(path): \(value.canonicalJSON.prefix(80)) is not one of \(JSONValue.array(allowed).canonicalJSON)")
        }
        if case .object(let members) = value {
            for key in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[key] == nil {
                found.append("\(path): the required property `\(key)` is missing")
            }
            let properties = schema["properties"]?.objectValue ?? [:]
            for (key, member) in members {
                if let property = properties[key] {
                    found += problems(member, property, path: "\(path).\(key)")
                } else if schema["additionalProperties"]?.boolValue == false {
                    found.append("\(path): `\(key)` is not a documented property")
                }
            }
        }
        if case .array(let items) = value, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() { found += problems(item, itemSchema, path: "\(path)[\(index)]") }
        }
        return found
    }

    func resolve(_ ref: String) -> JSONValue? {
        guard ref.hasPrefix("#/") else { return nil }
        var node: JSONValue? = document
        for part in ref.dropFirst(2).split(separator: "/") { node = node?[String(part)] }
        return node
    }

    static func has(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): true
        case ("number", .number): true
        case ("integer", .number(let number)): number == number.rounded()
        default: false
        }
    }
}
