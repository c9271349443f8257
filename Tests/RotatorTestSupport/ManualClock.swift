import AWS

/// Virtual time for tests of code that waits: retries, backoff, polling, deadlines. A test runs in
/// microseconds yet sees every wait, and may check what was waited and when.
public final class ManualClock: MillisecondClock {
    public var nowMilliseconds: Int64
    /// Each duration asked of `sleep`, in order.
    public private(set) var sleeps: [Int64] = []
    /// The virtual time at the end of each sleep.
    public private(set) var sleepEnds: [Int64] = []

    public init(nowMilliseconds: Int64) { self.nowMilliseconds = nowMilliseconds }

    /// Returns at once: the clock moves forward by `milliseconds` (never back) and the sleep is recorded.
    public func sleep(milliseconds: Int64) {
        sleeps.append(milliseconds)
        nowMilliseconds += max(0, milliseconds)
        sleepEnds.append(nowMilliseconds)
    }
}
