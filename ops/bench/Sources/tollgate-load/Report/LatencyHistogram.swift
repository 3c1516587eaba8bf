/// Durations in nanoseconds, counted in log-linear buckets as an HDR histogram counts them: exact below 1,024 ns,
/// within 1/512 (0.2 %) of the true value above, in the same 220 KiB whatever the number of samples.
///
/// ```swift
/// var histogram = LatencyHistogram()
/// histogram.record(nanoseconds: 1_250_000)
/// histogram.value(atQuantile: 0.99)  // 1_251_327: the highest value its bucket stands for
/// ```
struct LatencyHistogram: Sendable {
    /// 2^9 sub-buckets for each power of two above the exact range.
    private static let subBucketBits = 9
    private static let subBucketCount = 1 << subBucketBits
    private static let exactLimit: Int64 = 1 << (subBucketBits + 1)

    private var counts = [UInt64](repeating: 0, count: LatencyHistogram.bucketIndex(for: .max) + 1)
    private(set) var count: UInt64 = 0
    private(set) var maximum: Int64 = 0
    private(set) var minimum: Int64 = .max
    private var sum: Double = 0

    var mean: Double { count == 0 ? 0 : sum / Double(count) }

    mutating func record(nanoseconds value: Int64) {
        let value = max(value, 0)
        counts[Self.bucketIndex(for: value)] += 1
        count += 1
        sum += Double(value)
        maximum = max(maximum, value)
        minimum = min(minimum, value)
    }

    /// The smallest recorded value that at least `quantile` of the samples do not exceed (within the bucket
    /// precision, and never above the true maximum); 0 when nothing was recorded.
    func value(atQuantile quantile: Double) -> Int64 {
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((quantile * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            seen += bucketCount
            if seen >= rank { return min(Self.highestValue(inBucket: index), maximum) }
        }
        return maximum
    }

    static func bucketIndex(for value: Int64) -> Int {
        if value < exactLimit { return Int(value) }
        let shift = (Int64.bitWidth - 1 - value.leadingZeroBitCount) - subBucketBits
        return shift * subBucketCount + Int(value >> shift)
    }

    static func highestValue(inBucket index: Int) -> Int64 {
        if index < Int(exactLimit) { return Int64(index) }
        let shift = index / subBucketCount - 1
        let subBucket = Int64(index - shift * subBucketCount)
        return ((subBucket + 1) << shift) - 1
    }
}
