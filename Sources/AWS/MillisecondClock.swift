#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time in milliseconds and sleeping, replaceable in tests so retries and polling run
/// instantly. (Not the standard library's `Clock`, whose instants this code has no use for.)
public protocol MillisecondClock: AnyObject {
    /// Milliseconds since the Unix epoch, as the Runtime API's deadline is expressed.
    var nowMilliseconds: Int64 { get }
    func sleep(milliseconds: Int64)
}

public final class SystemClock: MillisecondClock {
    public init() {}

    public var nowMilliseconds: Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    public func sleep(milliseconds: Int64) {
        guard milliseconds > 0 else { return }
        var request = timespec(tv_sec: Int(milliseconds / 1000), tv_nsec: Int(milliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
