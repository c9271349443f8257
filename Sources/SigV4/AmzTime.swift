import Glibc

/// A signing instant in the SigV4 basic ISO 8601 form `yyyyMMdd'T'HHmmss'Z'` (always UTC).
public struct AmzTime: Sendable, Hashable {
    public let amzDate: String

    /// The `yyyyMMdd` part, used in the credential scope and to derive the signing key.
    public var date: Substring { amzDate.prefix(8) }

    /// The instant `epochSeconds` after 1970-01-01T00:00:00Z.
    public init(epochSeconds: Int) {
        var seconds = time_t(epochSeconds)
        var utc = tm()
        gmtime_r(&seconds, &utc)
        // Written digit by digit: every request is signed at a fresh time.
        amzDate = String(unsafeUninitializedCapacity: 16) { out in
            var end = 0
            func put(_ value: Int32, _ width: Int) {
                var rest = Int(value)
                for i in stride(from: end + width - 1, through: end, by: -1) {
                    out[i] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                end += width
            }
            put(utc.tm_year + 1900, 4)
            put(utc.tm_mon + 1, 2)
            put(utc.tm_mday, 2)
            out[end] = UInt8(ascii: "T")
            end += 1
            put(utc.tm_hour, 2)
            put(utc.tm_min, 2)
            put(utc.tm_sec, 2)
            out[end] = UInt8(ascii: "Z")
            return end + 1
        }
    }

    /// Accepts only the exact 16-character shape `dddddddd'T'dddddd'Z'`.
    public init?(amzDate: String) {
        let bytes = Array(amzDate.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else {
            return nil
        }
        let digitPositions = Array(0..<8) + Array(9..<15)
        guard digitPositions.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[$0]) }) else {
            return nil
        }
        self.amzDate = amzDate
    }
}
