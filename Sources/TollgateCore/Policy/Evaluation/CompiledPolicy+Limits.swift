import Foundation

extension CompiledPolicy {
    /// The scope part of a counter key: `grant:<grant>`, `agent:<agent>`, `session:<session>` or `global`.
    static func scopeKey(_ scope: PolicyLimit.Scope, call: PolicyCall) -> String {
        switch scope {
        case .grant: "grant:\(call.grant)"
        case .agent: "agent:\(call.agent)"
        case .session: "session:\(call.session)"
        case .global: "global"
        }
    }

    /// Seconds since the epoch, kept in a range where window arithmetic cannot overflow.
    static func epochSeconds(_ date: Date) -> Double {
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite else { return 0 }
        return min(max(seconds, -1e15), 1e15)
    }

    func counterKey(_ limit: PolicyLimit, call: PolicyCall, now: Double) -> CounterKey {
        let clamped = Self.epochSeconds(Date(timeIntervalSince1970: now))
        let length = Double(limit.window)
        let start = Int64((clamped / length).rounded(.down)) * Int64(limit.window)
        return CounterKey(
            server: call.server,
            counter: limit.counter,
            scope: Self.scopeKey(limit.scope, call: call),
            windowStart: start,
            windowSeconds: limit.window
        )
    }

    /// Checks every applicable limit against the supplied counts. The first limit exceeded names the rule; the retry
    /// time is the longest wait among the exceeded ones (the call needs all of them). A counter named by several
    /// limits is incremented once, by the first limit's amount, and its ceiling is the lowest among them.
    func applyLimits(
        _ limits: [Limit],
        outcome: PolicyDecision.Outcome,
        rule: String,
        call: PolicyCall,
        counts: [CounterKey: Double],
        trace: inout Trace
    ) -> PolicyDecision {
        let now = Self.epochSeconds(call.now)
        var reservations: [CounterReservation] = []
        reservations.reserveCapacity(limits.count)
        // The argument each reservation's amount was read from, if any: a reason never quotes an argument's value
        // (it is recorded, and `store_arguments` may keep the arguments out of the log).
        var amountSources: [ValuePath?] = []
        var exceeded: (path: String, reason: String)?
        var retryAfter = 0
        for compiled in limits {
            let limit = compiled.limit
            var amount = limit.increment
            if let path = limit.incrementFrom {
                let raw = value(at: path, in: call)
                guard let raw, let number = Self.numeric(raw), number.isFinite, number >= 0 else {
                    let reason = "\(path) must be a non-negative number for the limit on `\(limit.counter)`, found \(Self.unusableAmount(raw))"
                    trace.note(compiled.path, applied: true, reason + "; denied (fail closed)")
                    return PolicyDecision(outcome: .deny(reason: reason), rule: compiled.path, policyHash: contentHash)
                }
                amount = number
            }
            let key = counterKey(limit, call: call, now: now)
            let existing = reservations.firstIndex { $0.key == key }
            var source = limit.incrementFrom
            if let existing {
                amount = reservations[existing].amount
                source = amountSources[existing]
            }
            if amount > limit.max {
                let what = source.map { "its \($0)" } ?? CanonicalNumber.format(amount)
                let reason = "this call alone (\(what)) is more than the limit on `\(limit.counter)` allows: " + compiled.scopeDescription
                trace.note(compiled.path, applied: true, reason)
                return PolicyDecision(outcome: .deny(reason: reason), rule: compiled.path, policyHash: contentHash)
            }
            let current = Self.count(counts[key])
            var ceiling = limit.max
            var wait: Double = 0
            let length = Double(limit.window)
            let elapsed = now - Double(key.windowStart)
            switch limit.algorithm {
            case .fixed:
                wait = length - elapsed
            case .sliding:
                var previousKey = key
                previousKey.windowStart -= Int64(limit.window)
                let previous = Self.count(counts[previousKey])
                let weight = max(0, (length - elapsed) / length)
                ceiling = limit.max - previous * weight
                if current + amount <= limit.max {
                    // The previous window's weight must fall until it leaves room.
                    let room = limit.max - current - amount
                    let neededWeight = previous > 0 ? room / previous : 1
                    wait = length * (1 - neededWeight) - elapsed
                } else {
                    // Wait for this window to become the previous one and decay enough.
                    let neededWeight = current > 0 ? (limit.max - amount) / current : 1
                    wait = (length - elapsed) + length * (1 - neededWeight)
                }
            }
            let allowed = current + amount <= ceiling
            let total = CanonicalNumber.format(current + amount)
            if allowed {
                trace.note(compiled.path, applied: true, "`\(limit.counter)` would reach \(total), within \(compiled.scopeDescription)")
            } else {
                let seconds = wait.isFinite ? Int(min(max(wait.rounded(.up), 1), Double(PolicyDuration.maxSeconds))) : limit.window
                retryAfter = max(retryAfter, seconds)
                let reason = "limit reached on `\(limit.counter)`: \(compiled.scopeDescription)"
                trace.note(compiled.path, applied: true, "`\(limit.counter)` would reach \(total); \(reason)")
                if exceeded == nil { exceeded = (compiled.path, reason) }
            }
            if let existing {
                reservations[existing].ceiling = min(reservations[existing].ceiling, ceiling)
                reservations[existing].max = min(reservations[existing].max, limit.max)
            } else {
                reservations.append(
                    CounterReservation(key: key, amount: amount, ceiling: ceiling, max: limit.max, algorithm: limit.algorithm, rule: compiled.path)
                )
                amountSources.append(source)
            }
        }
        if let exceeded {
            return PolicyDecision(
                outcome: .limited(retryAfter: retryAfter, reason: exceeded.reason),
                rule: exceeded.path,
                policyHash: contentHash
            )
        }
        return PolicyDecision(outcome: outcome, rule: rule, policyHash: contentHash, reservations: reservations)
    }

    /// What an `increment_from` argument held instead of a usable amount, described without its value.
    static func unusableAmount(_ value: JSONValue?) -> String {
        guard let value else { return "nothing" }
        switch value {
        case .number(let number): return number.isFinite ? "a negative number" : "a number that is not finite"
        case .string:
            guard let number = numeric(value) else { return "a string that is not a decimal number" }
            return number.isFinite ? "a negative number (in a string)" : "a number that is not finite (in a string)"
        default: return kind(value)
        }
    }

    /// A supplied count; an absent one is 0, a corrupt one (NaN, negative infinity) blocks (fail closed).
    static func count(_ value: Double?) -> Double {
        guard let value else { return 0 }
        if value.isNaN || value == -.infinity { return .infinity }
        return max(0, value)
    }
}
