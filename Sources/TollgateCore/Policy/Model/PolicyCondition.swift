/// A test on one value of the call: an argument (`args.amount`) or the caller (`agent`, `grant`, ...).
///
/// ```yaml
/// when:
///   - {path: args.amount, op: gt, value: 1000}
///   - {path: args.currency, op: in, value: [usd, eur]}
/// ```
///
/// A condition on a value the call does not have is false, except `exists: false`. Numeric operators on a value that
/// is not a finite number make the call denied (fail closed), so that a rule cannot be dodged by sending `"1e999"`.
public struct PolicyCondition: Sendable, Hashable {
    public var path: ValuePath
    public var op: Operator
    public var value: JSONValue

    public init(path: ValuePath, op: Operator, value: JSONValue) {
        self.path = path
        self.op = op
        self.value = value
    }

    /// The comparison a condition makes.
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        /// Equal: numbers by value, everything else exactly.
        case eq
        /// Not equal.
        case neq
        /// Equal to one of the listed values.
        case `in`
        /// Equal to none of the listed values.
        case notIn = "not_in"
        case lt
        case lte
        case gt
        case gte
        /// The string matches the regular expression somewhere (anchor with `^` and `$`).
        case regex
        /// The string contains the substring, or the array contains the element.
        case contains
        /// The value is present (`true`) or absent (`false`).
        case exists
    }
}
