import Glibc
import RotatorJSON
import RotatorLogging
import Synchronization
import Testing

/// Collects what a `Logger` writes.
final class LineSink: @unchecked Sendable {
    private let storage = Mutex<[String]>([])
    var lines: [String] { storage.withLock { $0 } }
    var write: @Sendable (String) -> Void { { line in self.storage.withLock { $0.append(line) } } }
}

/// `yyyy-MM-dd` of the current UTC day, computed independently of the logger.
func utcDay() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    func pad(_ v: Int32, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
}

@Suite struct LoggerJSONFormatTests {
    @Test func oneLineOfValidJSONWithTimestampLevelMessageContextAndFields() throws {
        let sink = LineSink()
        let logger = Logger(format: .json, context: [("requestId", "r-1")], sink: sink.write)
        let dayBefore = utcDay()
        logger.info("step \"started\"\nnext line", ("step", "createSecret"), ("secretArn", "arn:aws:secretsmanager:x"))
        let dayAfter = utcDay()

        #expect(sink.lines.count == 1)
        let line = try #require(sink.lines.first)
        #expect(!line.contains("\n"))
        #expect(!line.contains("\r"))
        let value = try JSON.parse(line)
        #expect(value["level"] == .string("INFO"))
        #expect(value["message"] == .string("step \"started\"\nnext line"))
        #expect(value["requestId"] == .string("r-1"))
        #expect(value["step"] == .string("createSecret"))
        #expect(value["secretArn"] == .string("arn:aws:secretsmanager:x"))

        // ISO 8601 in UTC with milliseconds: yyyy-MM-ddTHH:mm:ss.SSSZ
        let timestamp = try #require(value["timestamp"]?.stringValue)
        let chars = Array(timestamp)
        #expect(chars.count == 24, "\(timestamp)")
        if chars.count == 24 {
            for (i, c) in chars.enumerated() {
                switch i {
                case 4, 7: #expect(c == "-")
                case 10: #expect(c == "T")
                case 13, 16: #expect(c == ":")
                case 19: #expect(c == ".")
                case 23: #expect(c == "Z")
                default: #expect(c.isASCII && c.isNumber, "\(timestamp)")
                }
            }
            #expect([dayBefore, dayAfter].contains(String(timestamp.prefix(10))))
        }
    }

    @Test func levelNames() throws {
        let sink = LineSink()
        let logger = Logger(format: .json, minimumLevel: .debug, sink: sink.write)
        logger.debug("d")
        logger.info("i")
        logger.warn("w")
        logger.error("e")
        let levels = try sink.lines.map { try JSON.parse($0)["level"]?.stringValue }
        #expect(levels == ["DEBUG", "INFO", "WARN", "ERROR"])
    }

    @Test func withAddsContextWithoutChangingTheOriginal() throws {
        let sink = LineSink()
        let base = Logger(format: .json, sink: sink.write)
        let child = base.with(("requestId", "r-2"), ("step", "setSecret"))
        child.info("a")
        base.info("b")
        let first = try JSON.parse(sink.lines[0])
        let second = try JSON.parse(sink.lines[1])
        #expect(first["requestId"] == .string("r-2"))
        #expect(first["step"] == .string("setSecret"))
        #expect(second["requestId"] == nil)
        #expect(base.context.isEmpty)
        #expect(child.context.map { $0.0 } == ["requestId", "step"])
    }

    @Test func controlCharactersInFieldsStayInsideTheOneLine() throws {
        let sink = LineSink()
        let logger = Logger(format: .json, sink: sink.write)
        logger.error("a\r\nb\u{0}c", ("reason", "x\ny\tz"))
        #expect(sink.lines.count == 1)
        let line = sink.lines[0]
        #expect(!line.utf8.contains { $0 < 0x20 })
        let value = try JSON.parse(line)
        #expect(value["message"] == .string("a\r\nb\u{0}c"))
        #expect(value["reason"] == .string("x\ny\tz"))
    }
}

@Suite struct LoggerTextFormatTests {
    @Test func newlinesAreReplacedSoOneEventIsOneLine() {
        let sink = LineSink()
        let logger = Logger(format: .text, context: [("requestId", "r-1")], sink: sink.write)
        logger.error("first\nsecond", ("reason", "a\nb"))
        #expect(sink.lines.count == 1)
        let line = sink.lines[0]
        #expect(!line.contains("\n"))
        #expect(line.hasPrefix("ERROR"))
        #expect(line.contains("first second"))
        #expect(line.contains("requestId=r-1"))
        #expect(line.contains("reason=a b"))
    }

    @Test func crlfIsReplacedToo() {
        // Windows hosts (SSM output of PowerShell) answer with CRLF line ends.
        let sink = LineSink()
        let logger = Logger(format: .text, sink: sink.write)
        logger.warn("line1\r\nline2", ("stderr", "x\r\ny"))
        #expect(sink.lines.count == 1)
        let line = sink.lines[0]
        #expect(!line.unicodeScalars.contains("\n"), "a newline survives in \(line.debugDescription)")
        #expect(line.contains("line1"))
        #expect(line.contains("line2"))
    }

    @Test func levelNameStartsTheLine() {
        let sink = LineSink()
        let logger = Logger(format: .text, minimumLevel: .debug, sink: sink.write)
        logger.debug("d")
        logger.info("i")
        logger.warn("w")
        #expect(sink.lines.map { $0.split(separator: " ").first.map(String.init) } == ["DEBUG", "INFO", "WARN"])
    }
}

@Suite struct LoggerLevelTests {
    @Test func messagesBelowTheMinimumAreDropped() throws {
        let sink = LineSink()
        let logger = Logger(format: .json, minimumLevel: .warn, sink: sink.write)
        logger.debug("d")
        logger.info("i")
        logger.warn("w")
        logger.error("e")
        logger.log(.info, "i2", [])
        logger.log(.error, "e2", [])
        let messages = try sink.lines.map { try JSON.parse($0)["message"]?.stringValue }
        #expect(messages == ["w", "e", "e2"])
    }

    @Test func defaultMinimumIsInfo() {
        let sink = LineSink()
        let logger = Logger(format: .text, sink: sink.write)
        logger.debug("d")
        logger.info("i")
        #expect(sink.lines.count == 1)
    }

    @Test func errorOnlyKeepsErrors() {
        let sink = LineSink()
        let logger = Logger(format: .text, minimumLevel: .error, sink: sink.write)
        logger.debug("d")
        logger.info("i")
        logger.warn("w")
        logger.error("e")
        #expect(sink.lines.count == 1)
    }
}

@Suite struct LoggerEnvironmentTests {
    @Test func formatFromAWSLambdaLogFormat() {
        #expect(Logger(environment: ["AWS_LAMBDA_LOG_FORMAT": "JSON"]).format == .json)
        #expect(Logger(environment: ["AWS_LAMBDA_LOG_FORMAT": "Text"]).format == .text)
        #expect(Logger(environment: [:]).format == .text)
    }

    @Test(arguments: [
        ("DEBUG", Logger.Level.debug), ("TRACE", .debug), ("INFO", .info), ("WARN", .warn),
        ("ERROR", .error), ("FATAL", .error),
    ])
    func levelFromAWSLambdaLogLevel(_ name: String, _ level: Logger.Level) {
        #expect(Logger(environment: ["AWS_LAMBDA_LOG_LEVEL": name, "AWS_LAMBDA_LOG_FORMAT": "JSON"]).minimumLevel == level)
    }

    @Test func levelDefaultsToInfo() {
        #expect(Logger(environment: [:]).minimumLevel == .info)
        #expect(Logger(environment: ["AWS_LAMBDA_LOG_FORMAT": "JSON"]).minimumLevel == .info)
    }
}
