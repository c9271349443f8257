import AWS
import RotatorJSON
import RotatorLogging
#if canImport(Glibc)
import Glibc
#endif

/// Where the commands write: results on standard output (lines, or one JSON document), progress
/// on standard error: redrawn in place on a terminal, plain lines otherwise.
public final class Console: @unchecked Sendable {
    public let json: Bool
    let progressIsTerminal: Bool
    private let writeOut: (String) -> Void
    private let writeErr: (String) -> Void
    private var progressShown = false

    public init(json: Bool, progressIsTerminal: Bool, writeOut: @escaping (String) -> Void, writeErr: @escaping (String) -> Void) {
        self.json = json
        self.progressIsTerminal = progressIsTerminal
        self.writeOut = writeOut
        self.writeErr = writeErr
    }

    /// Standard output and error of this process; progress redraws only when stderr is a terminal.
    public static func standard(json: Bool) -> Console {
        Console(json: json, progressIsTerminal: isatty(2) == 1,
                writeOut: { Console.write(1, $0) }, writeErr: { Console.write(2, $0) })
    }

    static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 { if errno == EINTR { continue } else { return } }
            bytes = bytes.dropFirst(written)
        }
    }

    /// One result line (human output only; with --json the command prints one document at the end).
    public func line(_ text: String) {
        guard !json else { return }
        clearProgress()
        writeOut(text + "\n")
    }

    public func document(_ value: JSON) {
        clearProgress()
        writeOut(value.serialized + "\n")
    }

    /// A progress update. On a terminal it replaces the previous one; otherwise only `milestone`
    /// updates are written, one line each, so a log file gets no flood of elapsed-time ticks.
    public func progress(_ text: String, milestone: Bool) {
        if progressIsTerminal {
            writeErr("\r\u{1B}[K" + text)
            progressShown = true
        } else if milestone {
            writeErr(text + "\n")
        }
    }

    public func warning(_ text: String) {
        clearProgress()
        writeErr(text + "\n")
    }

    func clearProgress() {
        if progressShown {
            writeErr("\r\u{1B}[K")
            progressShown = false
        }
    }
}

extension String {
    /// Left-aligned in a column of `width` characters (at least one space after).
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}

/// `2026-11-29 10:35:35 UTC`
func utcText(_ epochMilliseconds: Int64) -> String {
    utcDateTime(epochSeconds: Int(epochMilliseconds / 1000), separator: " ") + " UTC"
}

/// `3 min`, `42 s`, `2 h 5 min`, `3 days`
func durationText(_ milliseconds: Int64) -> String {
    let seconds = max(0, milliseconds / 1000)
    if seconds < 120 { return "\(seconds) s" }
    let minutes = seconds / 60
    if minutes < 120 { return "\(minutes) min" }
    let hours = minutes / 60
    if hours < 48 { return "\(hours) h \(minutes % 60) min" }
    return "\(hours / 24) days"
}
