import RotatorJSON
#if canImport(Glibc)
import Glibc
#endif

/// One line per event on standard output, where Lambda collects it: plain text, or JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`. Callers pass identifiers only (request id, step, secret ARN);
/// nothing that could hold a password, a rotation token or a credential is ever a field.
public struct Logger: Sendable {
    public enum Format: Sendable { case text, json }
    public enum Level: Int, Comparable, Sendable {
        case debug = 0, info, warn, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var name: String { ["DEBUG", "INFO", "WARN", "ERROR"][rawValue] }
    }

    public let format: Format
    public let minimumLevel: Level
    /// Fields carried by every line, such as the request id of the invocation.
    public private(set) var context: [(String, String)]
    private let sink: @Sendable (String) -> Void

    public init(format: Format, minimumLevel: Level = .info, context: [(String, String)] = [],
                sink: @escaping @Sendable (String) -> Void = Logger.standardOutput) {
        self.format = format
        self.minimumLevel = minimumLevel
        self.context = context
        self.sink = sink
    }

    /// Reads `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL` as Lambda sets them.
    public init(environment: [String: String]) {
        let format: Format = environment["AWS_LAMBDA_LOG_FORMAT"]?.uppercased() == "JSON" ? .json : .text
        let level: Level
        switch environment["AWS_LAMBDA_LOG_LEVEL"]?.uppercased() {
        case "DEBUG", "TRACE": level = .debug
        case "WARN": level = .warn
        case "ERROR", "FATAL": level = .error
        default: level = .info
        }
        self.init(format: format, minimumLevel: level)
    }

    public static let standardOutput: @Sendable (String) -> Void = { line in
        // One write(2) per line: lines from one process never interleave, and nothing sits in a buffer
        // when Lambda freezes the process between events.
        var bytes = Array((line + "\n").utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
            if written < 0 { if errno == EINTR { continue } else { return } }
            bytes = bytes.dropFirst(written)
        }
    }

    /// This logger with more fields on every line.
    public func with(_ fields: (String, String)...) -> Logger {
        var copy = self
        copy.context += fields
        return copy
    }

    public func debug(_ message: String, _ fields: (String, String)...) { log(.debug, message, fields) }
    public func info(_ message: String, _ fields: (String, String)...) { log(.info, message, fields) }
    public func warn(_ message: String, _ fields: (String, String)...) { log(.warn, message, fields) }
    public func error(_ message: String, _ fields: (String, String)...) { log(.error, message, fields) }

    public func log(_ level: Level, _ message: String, _ fields: [(String, String)]) {
        guard level >= minimumLevel else { return }
        let all = context + fields
        switch format {
        case .json:
            let members: [(String, JSON)] = [("timestamp", .string(Logger.timestamp())), ("level", .string(level.name)),
                                             ("message", .string(message))] + all.map { ($0.0, .string($0.1)) }
            sink(JSON.object(members).serialized)
        case .text:
            // Line breaks would split one event into several CloudWatch entries. Scalars, not
            // Characters: "\r\n" is a single Character equal to neither "\r" nor "\n".
            let flat = { (s: String) in
                String(String.UnicodeScalarView(s.unicodeScalars.map { $0 == "\n" || $0 == "\r" ? " " : $0 }))
            }
            sink(([level.name, flat(message)] + all.map { "\($0.0)=\(flat($0.1))" }).joined(separator: " "))
        }
    }

    /// `2026-11-29T07:57:28.123Z`
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return utcDateTime(epochSeconds: Int(ts.tv_sec), separator: "T") + "." + zeroPadded(Int(ts.tv_nsec / 1_000_000), 3) + "Z"
    }
}

/// `2026-11-29 07:57:28` (with `separator` between the date and the time): a time in UTC, as logs
/// and the operator commands show it.
public func utcDateTime(epochSeconds: Int, separator: String) -> String {
    var seconds = epochSeconds
    var parts = tm()
    gmtime_r(&seconds, &parts)
    return "\(zeroPadded(Int(parts.tm_year) + 1900, 4))-\(zeroPadded(Int(parts.tm_mon) + 1, 2))-\(zeroPadded(Int(parts.tm_mday), 2))"
        + separator + "\(zeroPadded(Int(parts.tm_hour), 2)):\(zeroPadded(Int(parts.tm_min), 2)):\(zeroPadded(Int(parts.tm_sec), 2))"
}

private func zeroPadded(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, width - text.count)) + text
}
