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
        amzDate = Self.digits(Int(utc.tm_year) + 1900, 4) + Self.digits(Int(utc.tm_mon) + 1, 2)
            + Self.digits(Int(utc.tm_mday), 2) + "T" + Self.digits(Int(utc.tm_hour), 2)
            + Self.digits(Int(utc.tm_min), 2) + Self.digits(Int(utc.tm_sec), 2) + "Z"
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

    /// `value` in decimal, left-padded with zeros to `width`.
    private static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
