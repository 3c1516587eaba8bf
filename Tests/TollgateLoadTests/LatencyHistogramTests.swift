import Testing

@testable import tollgate_load

struct LatencyHistogramTests {
    @Test func smallValuesAreExact() {
        var histogram = LatencyHistogram()
        for value in 1...1000 { histogram.record(nanoseconds: Int64(value)) }
        #expect(histogram.value(atQuantile: 0.5) == 500)
        #expect(histogram.value(atQuantile: 0.99) == 990)
        #expect(histogram.value(atQuantile: 1) == 1000)
        #expect(histogram.minimum == 1)
        #expect(histogram.mean == 500.5)
    }

    @Test func largeValuesAreWithinTwoTenthsOfAPercent() {
        var histogram = LatencyHistogram()
        // 1 ms to 10 s, uniformly.
        let values = (1...10_000).map { Int64($0) * 1_000_000 }
        for value in values.shuffled() { histogram.record(nanoseconds: value) }
        for quantile in [0.5, 0.9, 0.99, 0.999] {
            let exact = Double(values[Int((quantile * Double(values.count)).rounded(.up)) - 1])
            let reported = Double(histogram.value(atQuantile: quantile))
            #expect(reported >= exact && reported <= exact * 1.002, "p\(quantile * 100): \(reported) for \(exact)")
        }
        #expect(histogram.value(atQuantile: 1) == 10_000_000_000)
        #expect(histogram.maximum == 10_000_000_000)
    }

    @Test func bucketsCoverEveryValueInOrder() {
        var previous = -1
        var value: Int64 = 0
        while value < Int64.max / 3 {
            let index = LatencyHistogram.bucketIndex(for: value)
            #expect(index >= previous)
            #expect(LatencyHistogram.highestValue(inBucket: index) >= value)
            if index > 0 { #expect(LatencyHistogram.highestValue(inBucket: index - 1) < value) }
            previous = index
            value = value * 3 / 2 + 1
        }
        #expect(LatencyHistogram.bucketIndex(for: .max) < 30_000)
    }

    @Test func anEmptyHistogramReportsZero() {
        let histogram = LatencyHistogram()
        #expect(histogram.value(atQuantile: 0.99) == 0)
        #expect(histogram.mean == 0)
    }
}
